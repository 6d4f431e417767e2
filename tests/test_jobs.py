"""Webhooks and workflows: signed, retried, durable across killed workers, loop-guarded.

Each test gets a database of its own, so the deployment under test is the only one
dispatching (one leader per database) and its job settings are the ones that apply.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import pytest

from kernel.config import Settings
from plugins.jobs.signing import verify
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Api, running
from tests.receiver import Receiver
from tests.server import REPO, TesseraServer, tessera_env

FAST = {
    "backoff_seconds": 0.2,
    "poll_interval": 0.2,
    "sweep_interval": 0.3,
    "overdue_after": 0.5,
    "delivery_timeout": 2.0,
    "lease_margin": 0.5,
}


@asynccontextmanager
async def deployment(
    make_settings: Callable[..., Settings], database_url: str, **overrides: Any
) -> AsyncIterator[Api]:
    """An app on ``database_url`` with fast job settings, an admin and a project."""
    jobs = {**FAST, **overrides.pop("jobs", {})}
    settings = make_settings(
        database_url=database_url, plugins={"config": {"jobs": jobs}}, **overrides
    )
    async with running(settings) as client:
        login = await client.post(
            "/api/admin/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
        )
        headers = {"Authorization": f"Bearer {login.json()['token']}"}
        project = f"j{secrets.token_hex(4)}"
        created = await client.post(
            "/api/projects", json={"id": project, "name": "Jobs"}, headers=headers
        )
        assert created.status_code == 201, created.text
        yield Api(client, headers, project)


async def eventually(check: Callable[[], Awaitable[Any]], within: float = 20.0) -> Any:
    """Poll ``check`` until it returns something truthy."""
    deadline = time.monotonic() + within
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {within}s (last: {result!r})")
        await asyncio.sleep(0.1)


async def webhook(api: Api, url: str, events: list[str] | None = None) -> dict[str, Any]:
    response = await api.client.post(
        api.url("/webhooks"),
        json={"url": url, "events": events or ["orders.*"]},
        headers=api.headers,
    )
    assert response.status_code == 201, response.text
    return response.json()


async def deliveries(api: Api, webhook_id: int) -> list[dict[str, Any]]:
    response = await api.client.get(
        api.url(f"/webhooks/{webhook_id}/deliveries"), headers=api.headers
    )
    assert response.status_code == 200, response.text
    return response.json()["data"]


async def runs(api: Api, workflow_id: int) -> list[dict[str, Any]]:
    response = await api.client.get(api.url(f"/workflows/{workflow_id}/runs"), headers=api.headers)
    assert response.status_code == 200, response.text
    return response.json()["data"]


async def orders(api: Api) -> None:
    await api.create_collection(
        "orders", [{"name": "title", "type": "string"}, {"name": "status", "type": "string"}]
    )


# -- webhooks ---------------------------------------------------------------------------


async def test_delivery_is_signed_and_the_signature_verifies(
    make_settings: Callable[..., Settings], jobs_db: str, receiver: Receiver
) -> None:
    async with deployment(make_settings, jobs_db) as api:
        await orders(api)
        hook = await webhook(api, receiver.url)
        assert hook["secret"].startswith("whsec_")
        record = await api.create("orders", {"title": "Desk"})
        await eventually(lambda: asyncio.sleep(0, result=receiver.requests))
        request = receiver.requests[0]
        assert verify(hook["secret"], request.body, request.headers["X-Tessera-Signature"])
        assert not verify("whsec_wrong", request.body, request.headers["X-Tessera-Signature"])
        body = orjson.loads(request.body)
        assert body["type"] == "orders.insert"
        assert body["record"]["title"] == "Desk" and body["record_id"] == record["id"]
        assert body["delivery_id"] == int(request.headers["X-Tessera-Delivery"])
        assert abs(body["sent_at"] - time.time()) < 60
        assert int(request.headers["X-Tessera-Timestamp"]) == body["sent_at"]
        listed = (await api.client.get(api.url("/webhooks"), headers=api.headers)).json()["data"]
        assert "secret" not in listed[0] and "secret_salt" not in listed[0]
        logged = await eventually(lambda: _succeeded(api, hook["id"]))
        assert logged[0]["attempts"] == 1 and logged[0]["last_status_code"] == 200


async def _succeeded(api: Api, webhook_id: int) -> list[dict[str, Any]]:
    found = await deliveries(api, webhook_id)
    return found if found and all(d["status"] == "succeeded" for d in found) else []


async def test_a_receiver_that_fails_twice_gets_the_event_on_the_third_attempt(
    make_settings: Callable[..., Settings], jobs_db: str, receiver: Receiver
) -> None:
    receiver.fail_times = 2
    async with deployment(make_settings, jobs_db) as api:
        await orders(api)
        hook = await webhook(api, receiver.url)
        await api.create("orders", {"title": "Chair"})
        logged = await eventually(lambda: _succeeded(api, hook["id"]))
        assert logged[0]["attempts"] == 3
        assert len(receiver.requests) == 3
        ids = {request.headers["X-Tessera-Delivery"] for request in receiver.requests}
        assert len(ids) == 1  # the same delivery, retried


async def test_a_delivery_that_keeps_failing_ends_failed_and_can_be_redelivered(
    make_settings: Callable[..., Settings], jobs_db: str, receiver: Receiver
) -> None:
    receiver.fail_times = 3
    async with deployment(make_settings, jobs_db, jobs={"max_attempts": 3}) as api:
        await orders(api)
        hook = await webhook(api, receiver.url)
        await api.create("orders", {"title": "Lamp"})

        async def failed() -> list[dict[str, Any]]:
            found = await deliveries(api, hook["id"])
            return found if found and found[0]["status"] == "failed" else []

        logged = (await eventually(failed))[0]
        assert logged["attempts"] == 3
        assert logged["last_status_code"] == 500
        assert logged["last_error"].startswith("HTTP 500")
        again = await api.client.post(
            api.url(f"/webhooks/{hook['id']}/deliveries/{logged['id']}/redeliver"),
            headers=api.headers,
        )
        assert again.status_code == 202
        logged = await eventually(lambda: _succeeded(api, hook["id"]))
        assert logged[0]["attempts"] == 1
        unknown = await api.client.post(
            api.url(f"/webhooks/{hook['id']}/deliveries/999999/redeliver"), headers=api.headers
        )
        assert unknown.status_code == 404
        assert unknown.json()["errors"][0]["code"] == "delivery_not_found"
        no_hook = await api.client.post(
            api.url(f"/webhooks/999999/deliveries/{logged[0]['id']}/redeliver"),
            headers=api.headers,
        )
        assert no_hook.status_code == 404
        async with outbox(jobs_db) as conn:
            await conn.execute(
                "UPDATE tessera.webhook_deliveries SET status = 'delivering' WHERE id = $1",
                logged[0]["id"],
            )
        busy = await api.client.post(
            api.url(f"/webhooks/{hook['id']}/deliveries/{logged[0]['id']}/redeliver"),
            headers=api.headers,
        )
        assert busy.status_code == 409
        assert busy.json()["errors"][0]["code"] == "not_finished"


async def test_webhook_event_patterns_select_events(
    make_settings: Callable[..., Settings], jobs_db: str, receiver: Receiver
) -> None:
    async with deployment(make_settings, jobs_db) as api:
        await orders(api)
        hook = await webhook(api, receiver.url, ["orders.update"])
        record = await api.create("orders", {"title": "A"})
        await api.client.patch(
            api.url(f"/collections/orders/records/{record['id']}"),
            json={"title": "B"},
            headers=api.headers,
        )
        logged = await eventually(lambda: _succeeded(api, hook["id"]))
        assert [d["event"] for d in logged] == ["orders.update"]
        bad = await api.client.post(
            api.url("/webhooks"),
            json={"url": receiver.url, "events": ["orders.upsert"]},
            headers=api.headers,
        )
        assert bad.status_code == 422


async def test_webhook_patterns_must_name_known_collections_and_events(
    client: httpx.AsyncClient, admin_headers: dict[str, str], project: str
) -> None:
    api = Api(client, admin_headers, project)
    await orders(api)
    assert (await api.apply("rename_collection", collection="orders", new_name="sales")).is_success

    async def create(events: list[str]) -> httpx.Response:
        return await client.post(
            api.url("/webhooks"),
            json={"url": "http://127.0.0.1:9/hook", "events": events},
            headers=admin_headers,
        )

    unknown = await create(["sales.insert", "nosuch.insert", "ghost.*"])
    assert unknown.status_code == 422, unknown.text
    assert [(e["field"], e["code"]) for e in unknown.json()["errors"]] == [
        ("events", "collection_not_found"),
        ("events", "collection_not_found"),
    ]
    messages = " ".join(e["message"] for e in unknown.json()["errors"])
    assert "nosuch.insert" in messages and "ghost.*" in messages
    bad_event = await create(["sales.upsert"])
    assert bad_event.status_code == 422
    assert "sales.upsert" in bad_event.json()["errors"][0]["message"]
    listed = await client.get(api.url("/webhooks"), headers=admin_headers)
    assert listed.json()["data"] == []

    # the old name is a live alias of the collection: known
    for events in (["orders.insert", "sales.update"], ["*.delete"], ["*"]):
        response = await create(events)
        assert response.status_code == 201, response.text


async def test_a_renamed_collection_keeps_its_webhooks(
    make_settings: Callable[..., Settings], jobs_db: str, receiver: Receiver
) -> None:
    async with deployment(make_settings, jobs_db) as api:
        await orders(api)
        hook = await webhook(api, receiver.url, ["orders.insert", "*.delete"])
        await api.create("orders", {"title": "before"})
        await eventually(lambda: _succeeded(api, hook["id"]))

        renamed = await api.apply("rename_collection", collection="orders", new_name="purchases")
        assert renamed.status_code == 200, renamed.text
        listed = await api.client.get(api.url("/webhooks"), headers=api.headers)
        assert [h["events"] for h in listed.json()["data"]] == [["*.delete", "purchases.insert"]]

        await api.create("purchases", {"title": "after"})

        async def both() -> list[dict[str, Any]]:
            found = await _succeeded(api, hook["id"])
            return found if len(found) == 2 else []

        logged = await eventually(both)
        assert sorted(d["event"] for d in logged) == ["orders.insert", "purchases.insert"]
        assert sorted(orjson.loads(r.body)["collection"] for r in receiver.requests) == [
            "orders",
            "purchases",
        ]


async def test_metadata_and_link_local_targets_are_always_refused(
    make_settings: Callable[..., Settings], jobs_db: str
) -> None:
    async with deployment(make_settings, jobs_db) as api:
        for url in (
            "http://169.254.169.254/latest/meta-data",
            "http://[fe80::1]/hook",
            "http://metadata.google.internal/computeMetadata",
            "ftp://127.0.0.1/hook",
            "http://user:pass@127.0.0.1/hook",
        ):
            response = await api.client.post(
                api.url("/webhooks"), json={"url": url, "events": ["*"]}, headers=api.headers
            )
            assert response.status_code == 422, url
            assert response.json()["errors"][0]["code"] == "target_refused"
            assert response.json()["errors"][0]["field"] == "url"


async def test_loopback_is_refused_when_private_targets_are_denied(
    make_settings: Callable[..., Settings], jobs_db: str, receiver: Receiver
) -> None:
    async with deployment(make_settings, jobs_db) as api:
        await orders(api)
        hook = await webhook(api, receiver.url.replace("127.0.0.1", "localhost"))
    async with deployment(make_settings, jobs_db, jobs={"deny_private_targets": True}) as denied:
        refused = await denied.client.post(
            denied.url("/webhooks"),
            json={"url": receiver.url, "events": ["*"]},
            headers=denied.headers,
        )
        assert refused.status_code == 422
        assert "loopback or private" in refused.json()["errors"][0]["message"]
        # A webhook created while allowed is refused at delivery time, on the resolved address.
        same = Api(denied.client, denied.headers, api.project)
        await same.create("orders", {"title": "x"})

        async def failed() -> list[dict[str, Any]]:
            found = await deliveries(same, hook["id"])
            return found if found and found[0]["status"] == "failed" else []

        logged = (await eventually(failed))[0]
        assert logged["last_error"].startswith("target refused:")
        assert receiver.requests == []


async def test_only_admins_and_schema_keys_manage_webhooks(
    make_settings: Callable[..., Settings], jobs_db: str, receiver: Receiver
) -> None:
    async with deployment(make_settings, jobs_db) as api:
        reader = await api.key(["records:read", "records:write"])
        user = await api.user("someone@example.com")
        for headers in (reader, user):
            response = await api.client.post(
                api.url("/webhooks"), json={"url": receiver.url, "events": ["*"]}, headers=headers
            )
            assert response.status_code == 403
            assert (await api.client.get(api.url("/workflows"), headers=headers)).status_code == 403
        anonymous = await api.client.get(api.url("/webhooks"))
        assert anonymous.status_code == 401
        schema_key = await api.key(["schema:write"])
        created = await api.client.post(
            api.url("/webhooks"), json={"url": receiver.url, "events": ["*"]}, headers=schema_key
        )
        assert created.status_code == 201


async def test_webhook_changes_are_audited(
    make_settings: Callable[..., Settings], jobs_db: str, receiver: Receiver
) -> None:
    async with deployment(make_settings, jobs_db) as api:
        hook = await webhook(api, receiver.url, ["*"])
        deleted = await api.client.delete(api.url(f"/webhooks/{hook['id']}"), headers=api.headers)
        assert deleted.status_code == 204
        audit = (
            await api.client.get(api.url("/audit?action=webhook."), headers=api.headers)
        ).json()["data"]
        assert [entry["action"] for entry in audit] == ["webhook.delete", "webhook.create"]
        assert "secret" not in str(audit)


# -- workflows --------------------------------------------------------------------------


async def workflow(api: Api, spec: dict[str, Any]) -> dict[str, Any]:
    response = await api.client.post(api.url("/workflows"), json=spec, headers=api.headers)
    assert response.status_code == 201, response.text
    return response.json()


async def test_a_workflow_runs_only_when_its_condition_holds(
    make_settings: Callable[..., Settings], jobs_db: str
) -> None:
    async with deployment(make_settings, jobs_db) as api:
        await orders(api)
        await api.create_collection("notes", [{"name": "text", "type": "text"}])
        flow = await workflow(
            api,
            {
                "name": "triage",
                "trigger": {
                    "collection": "orders",
                    "events": ["insert"],
                    "condition": "title contains 'urgent'",
                },
                "actions": [
                    {"type": "set_field", "options": {"field": "status", "value": "flagged"}},
                    {
                        "type": "create_record",
                        "options": {"collection": "notes", "values": {"text": {"from": "title"}}},
                    },
                ],
            },
        )
        calm = await api.create("orders", {"title": "calm order"})
        urgent = await api.create("orders", {"title": "URGENT order"})

        async def finished() -> list[dict[str, Any]]:
            found = await runs(api, flow["id"])
            return found if found and found[0]["status"] == "succeeded" else []

        (run,) = await eventually(finished)
        assert run["input"]["record_id"] == urgent["id"]
        assert [step["type"] for step in run["steps"]] == ["set_field", "create_record"]
        assert all(step["status"] == "succeeded" for step in run["steps"])
        assert run["duration_ms"] is not None
        read = await api.client.get(
            api.url(f"/collections/orders/records/{urgent['id']}"), headers=api.headers
        )
        assert read.json()["status"] == "flagged"
        untouched = await api.client.get(
            api.url(f"/collections/orders/records/{calm['id']}"), headers=api.headers
        )
        assert untouched.json()["status"] is None
        notes = (
            await api.client.get(api.url("/collections/notes/records"), headers=api.headers)
        ).json()["data"]
        assert [note["text"] for note in notes] == ["URGENT order"]
        await asyncio.sleep(1)
        assert len(await runs(api, flow["id"])) == 1  # the calm order never ran it


async def test_a_self_triggering_workflow_is_cut_off_at_the_depth_bound(
    make_settings: Callable[..., Settings], jobs_db: str
) -> None:
    async with deployment(make_settings, jobs_db, jobs={"workflow_max_depth": 3}) as api:
        await orders(api)
        flow = await workflow(
            api,
            {
                "name": "echo",
                "trigger": {"collection": "orders", "events": ["insert", "update"]},
                "actions": [{"type": "set_field", "options": {"field": "status", "from": "title"}}],
            },
        )
        await api.create("orders", {"title": "again"})

        async def cut() -> list[dict[str, Any]]:
            found = await runs(api, flow["id"])
            return found if any(run["status"] == "cut_off" for run in found) else []

        found = await eventually(cut)
        assert sorted(run["depth"] for run in found) == [0, 1, 2, 3]
        (stopped,) = [run for run in found if run["status"] == "cut_off"]
        assert stopped["depth"] == 3
        assert "trigger themselves" in stopped["error"]
        await asyncio.sleep(1)
        assert len(await runs(api, flow["id"])) == 4  # and nothing after


async def test_a_failing_action_fails_the_run_and_says_why(
    make_settings: Callable[..., Settings], jobs_db: str
) -> None:
    async with deployment(make_settings, jobs_db) as api:
        await orders(api)
        flow = await workflow(
            api,
            {
                "name": "broken",
                "trigger": {"collection": "orders", "events": ["insert"]},
                "actions": [{"type": "set_field", "options": {"field": "status", "value": 42}}],
            },
        )
        await api.create("orders", {"title": "x"})

        async def failed() -> list[dict[str, Any]]:
            found = await runs(api, flow["id"])
            return found if found and found[0]["status"] == "failed" else []

        (run,) = await eventually(failed)
        assert run["error"].startswith("step 1 failed: status: status must be a string")
        assert run["steps"][0]["status"] == "failed"


async def test_workflow_definitions_are_validated(
    make_settings: Callable[..., Settings], jobs_db: str
) -> None:
    async with deployment(make_settings, jobs_db) as api:
        await orders(api)
        response = await api.client.post(
            api.url("/workflows"),
            json={
                "name": "bad",
                "trigger": {"collection": "orders", "events": ["insert"], "condition": "nope = 1"},
                "actions": [
                    {"type": "launch_rocket", "options": {}},
                    {"type": "set_field", "options": {"value": 1}},
                ],
            },
            headers=api.headers,
        )
        assert response.status_code == 422
        fields = {error["field"] for error in response.json()["errors"]}
        assert fields == {"trigger.condition", "actions[0].type", "actions[1].options.field"}
        missing = await api.client.post(
            api.url("/workflows"),
            json={
                "name": "x",
                "trigger": {"collection": "ghosts", "events": ["insert"]},
                "actions": [{"type": "set_field", "options": {"field": "a"}}],
            },
            headers=api.headers,
        )
        assert missing.status_code == 422
        assert missing.json()["errors"][0]["field"] == "trigger.collection"


async def test_a_workflow_may_only_send_to_a_webhook_of_its_own_project(
    make_settings: Callable[..., Settings], jobs_db: str, receiver: Receiver
) -> None:
    async with deployment(make_settings, jobs_db) as api:
        await orders(api)
        own = await webhook(api, receiver.url)
        other = Api(api.client, api.headers, f"j{secrets.token_hex(4)}")
        created = await api.client.post(
            "/api/projects", json={"id": other.project, "name": "Other"}, headers=api.headers
        )
        assert created.status_code == 201, created.text
        await orders(other)
        foreign = await webhook(other, receiver.url)

        def spec(webhook_id: int) -> dict[str, Any]:
            return {
                "name": "forward",
                "trigger": {"collection": "orders", "events": ["insert"]},
                "actions": [{"type": "send_webhook", "options": {"webhook_id": webhook_id}}],
            }

        for webhook_id in (foreign["id"], 999999):
            refused = await api.client.post(
                api.url("/workflows"), json=spec(webhook_id), headers=api.headers
            )
            assert refused.status_code == 422, refused.text
            (error,) = refused.json()["errors"]
            assert (error["field"], error["code"]) == (
                "actions[0].options.webhook_id",
                "webhook_not_found",
            )
        assert (await workflow(api, spec(own["id"])))["actions"][0]["options"] == {
            "webhook_id": own["id"]
        }


async def test_a_disabled_workflow_does_not_run(
    make_settings: Callable[..., Settings], jobs_db: str
) -> None:
    async with deployment(make_settings, jobs_db) as api:
        await orders(api)
        flow = await workflow(
            api,
            {
                "name": "off",
                "trigger": {"collection": "orders", "events": ["insert"]},
                "actions": [{"type": "set_field", "options": {"field": "status", "value": "x"}}],
            },
        )
        patched = await api.client.patch(
            api.url(f"/workflows/{flow['id']}"), json={"active": False}, headers=api.headers
        )
        assert patched.json()["active"] is False
        await api.create("orders", {"title": "x"})
        await asyncio.sleep(1.5)
        assert await runs(api, flow["id"]) == []


async def test_send_webhook_action_delivers_through_the_webhook(
    make_settings: Callable[..., Settings], jobs_db: str, receiver: Receiver
) -> None:
    async with deployment(make_settings, jobs_db) as api:
        await orders(api)
        # subscribed to no event that happens here: only the action sends
        hook = await webhook(api, receiver.url, ["orders.delete"])
        await workflow(
            api,
            {
                "name": "notify",
                "trigger": {
                    "collection": "orders",
                    "events": ["insert"],
                    "condition": "title = 'ping'",
                },
                "actions": [{"type": "send_webhook", "options": {"webhook_id": hook["id"]}}],
            },
        )
        await api.create("orders", {"title": "ping"})
        logged = await eventually(lambda: _succeeded(api, hook["id"]))
        assert logged[0]["event"] == "orders.insert"
        assert verify(
            hook["secret"],
            receiver.requests[0].body,
            receiver.requests[0].headers["X-Tessera-Signature"],
        )


async def test_job_metrics_are_exported(
    make_settings: Callable[..., Settings], jobs_db: str, receiver: Receiver
) -> None:
    async with deployment(make_settings, jobs_db) as api:
        await orders(api)
        hook = await webhook(api, receiver.url)
        await api.create("orders", {"title": "m"})
        await eventually(lambda: _succeeded(api, hook["id"]))
        await asyncio.sleep(0.5)
        text = (await api.client.get("/metrics")).text
        assert 'tessera_jobs_queue_depth{kind="webhook_deliveries"}' in text
        assert 'tessera_webhook_deliveries_total{status="succeeded"}' in text


# -- poison events: one bad event never stalls the others ------------------------------


async def test_a_poison_event_is_marked_failed_and_the_others_still_flow(
    make_settings: Callable[..., Settings], jobs_db: str, receiver: Receiver
) -> None:
    """An event nested deeper than orjson parses, and one whose metadata a workflow cannot
    read, sit in the outbox ahead of a normal write: the normal write is still delivered,
    the deep record goes out as stored, and the unreadable one's run is failed, saying why."""
    deep = "[" * 3000 + "]" * 3000
    async with deployment(make_settings, jobs_db) as api, outbox(jobs_db) as conn:
        await orders(api)
        hook = await webhook(api, receiver.url, ["orders.insert"])
        flow = await workflow(
            api,
            {
                "name": "stamp",
                "trigger": {"collection": "orders", "events": ["insert"]},
                "actions": [{"type": "set_field", "options": {"field": "status", "value": "seen"}}],
            },
        )
        collection_id = await conn.fetchval(
            "SELECT id FROM tessera.collections WHERE project_id = $1 AND name = 'orders'",
            api.project,
        )
        for record_id, row, meta in [
            (900001, f'{{"id": 900001, "title": {deep}}}', "{}"),
            (900002, '{"id": 900002, "title": "odd"}', '{"depth": "not a number"}'),
        ]:
            await conn.execute(
                "INSERT INTO tessera.events (project_id, collection_id, collection,"
                " record_id, type, changed_fields, row, meta) VALUES"
                " ($1, $2, 'orders', $3, 'insert', '{}', $4::text::jsonb, $5::text::jsonb)",
                api.project,
                collection_id,
                record_id,
                row,
                meta,
            )
        good = await api.create("orders", {"title": "after the poison"})

        def delivered() -> dict[int, bytes]:
            # Read as text: no JSON parser here goes 3,000 levels deep.
            return {
                int(re.search(rb'"record_id":([0-9]+)', request.body)[1]): request.body
                for request in receiver.requests
            }

        bodies = await eventually(
            lambda: asyncio.sleep(0, result=len(delivered()) == 3 and delivered())
        )
        assert set(bodies) == {900001, 900002, good["id"]}
        assert f'"title":{deep}'.encode() in bodies[900001]

        async def poison_run_error() -> str | None:
            listed = await api.client.get(
                api.url(f"/workflows/{flow['id']}/runs"), headers=api.headers
            )
            assert listed.status_code == 200, listed.text
            return await conn.fetchval(
                "SELECT error FROM tessera.workflow_runs WHERE workflow_id = $1"
                " AND (input->>'record_id')::bigint = 900002 AND status = 'failed'",
                flow["id"],
            )

        error = await eventually(poison_run_error)
        assert "could not be dispatched" in error
        assert "not a number" in error
        assert len(await eventually(lambda: _succeeded(api, hook["id"]))) == 3
        metrics = (await api.client.get("/metrics")).text
        assert 'tessera_dispatch_failures_total{kind="run"}' in metrics


@asynccontextmanager
async def outbox(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A plain connection to write outbox events as no API would."""
    conn = await asyncpg.connect(database_url)
    try:
        yield conn
    finally:
        await conn.close()


# -- durability: a killed worker does not lose a delivery --------------------------------


def _worker_env(database_url: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    return tessera_env(
        TESSERA_DATABASE_URL=database_url,
        TESSERA_DATA_DIR=str(tmp_path),
        TESSERA_SECRET_KEY="test-secret-key-not-for-production",
        PYTHONPATH=str(REPO),
        **extra,
    )


def _jobs_config(namespace: str | None = None) -> str:
    config = dict(FAST)
    if namespace:
        config["redis_namespace"] = namespace
    return orjson.dumps({"jobs": config}).decode()


class Worker:
    """``tessera worker`` as a subprocess, ready once it says so."""

    def __init__(self, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "kernel.cli", "worker"],
            env=env,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 60
        assert self.process.stderr is not None
        while time.monotonic() < deadline:
            line = self.process.stderr.readline()
            if "tessera worker: ready" in line:
                return
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited: {self.process.stderr.read()}")
        raise RuntimeError("worker did not start")

    def kill(self) -> None:
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


async def test_a_killed_redis_worker_does_not_lose_the_delivery(
    make_settings: Callable[..., Settings],
    jobs_db: str,
    redis_url: str,
    receiver: Receiver,
    tmp_path: Path,
) -> None:
    """Every event is delivered at least once, signed, though the worker was killed while a
    delivery was in flight (the fault test of issue 14; see also tests/test_faults.py)."""
    titles = [f"survive-{n}" for n in range(5)]
    namespace = f"tessera-test-{secrets.token_hex(4)}"
    receiver.hold_seconds = 30  # the first attempt hangs: the worker dies holding it
    env = _worker_env(
        jobs_db,
        tmp_path,
        TESSERA_REDIS_URL=redis_url,
        TESSERA_PLUGINS__CONFIG=_jobs_config(namespace),
    )
    async with deployment(
        make_settings, jobs_db, redis_url=redis_url, jobs={"redis_namespace": namespace}
    ) as api:
        await orders(api)
        hook = await webhook(api, receiver.url)
        first = await asyncio.to_thread(Worker, env)
        try:
            for title in titles:
                await api.create("orders", {"title": title})
            assert await asyncio.to_thread(receiver.arrived.wait, 30)
            first.kill()
        finally:
            first.stop()
        second = await asyncio.to_thread(Worker, env)

        async def all_succeeded() -> list[dict[str, Any]]:
            found = await _succeeded(api, hook["id"])
            return found if len(found) == len(titles) else []

        try:
            logged = await eventually(all_succeeded, within=40)
        finally:
            second.stop()
    assert max(delivery["attempts"] for delivery in logged) >= 2  # the one the kill cut
    bodies = [orjson.loads(request.body) for request in receiver.requests]
    assert {body["record"]["title"] for body in bodies} == set(titles)
    assert len(receiver.requests) > len(titles)
    for request in receiver.requests:
        assert verify(hook["secret"], request.body, request.headers["X-Tessera-Signature"])


async def test_a_killed_in_process_server_does_not_lose_the_delivery(
    jobs_db: str, receiver: Receiver, tmp_path: Path
) -> None:
    receiver.hold_seconds = 30
    env = _worker_env(
        jobs_db,
        tmp_path,
        TESSERA_ADMIN_EMAIL=ADMIN_EMAIL,
        TESSERA_ADMIN_PASSWORD=ADMIN_PASSWORD,
        TESSERA_PLUGINS__CONFIG=_jobs_config(),
    )
    project = f"k{secrets.token_hex(4)}"
    with TesseraServer(env) as first:
        async with httpx.AsyncClient(base_url=first.url) as client:
            login = await client.post(
                "/api/admin/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
            )
            headers = {"Authorization": f"Bearer {login.json()['token']}"}
            api = Api(client, headers, project)
            await client.post("/api/projects", json={"id": project, "name": "k"}, headers=headers)
            await orders(api)
            hook = await webhook(api, receiver.url)
            await api.create("orders", {"title": "survive"})
            assert await asyncio.to_thread(receiver.arrived.wait, 30)
            assert first.process is not None
            os.kill(first.process.pid, signal.SIGKILL)
            first.process.wait(timeout=10)
    with TesseraServer(env) as second:
        async with httpx.AsyncClient(base_url=second.url) as client:
            api = Api(client, headers, project)
            logged = await eventually(lambda: _succeeded(api, hook["id"]), within=40)
    assert logged[0]["attempts"] == 2
    assert len(receiver.requests) == 2
