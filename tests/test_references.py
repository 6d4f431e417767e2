"""References follow the schema: renames rewrite, drops warn, purges refuse (issue 13.1).

Every stored thing that names a collection or field — policies, API keys, webhook
patterns, workflows, a third party's data — is rewritten by its holder inside the rename's
transaction, so nothing silently stops working when the alias is gone (grace 0 here), and
is listed as a dependent by drop, purge and type change.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kernel.config import Settings
from tests.conftest import Api
from tests.receiver import Receiver
from tests.test_jobs import _succeeded, deployment, eventually, runs, webhook, workflow


async def apply(api: Api, op: str, **args: Any) -> dict[str, Any]:
    response = await api.apply(op, **args)
    assert response.status_code == 200, response.text
    return response.json()


async def orders_with_everything(api: Api, receiver_url: str) -> dict[str, Any]:
    """orders and notes; a list policy, a webhook, a key and a workflow naming them."""
    await api.create_collection(
        "orders", [{"name": "title", "type": "string"}, {"name": "status", "type": "string"}]
    )
    await api.create_collection("notes", [{"name": "text", "type": "text"}])
    await api.set_policies("orders", list="status = 'paid'", read="", create="")
    hook = await webhook(api, receiver_url, ["orders.insert"])
    flow = await workflow(
        api,
        {
            "name": "paid orders get a note",
            "trigger": {
                "collection": "orders",
                "events": ["insert"],
                "condition": "status = 'paid'",
            },
            "actions": [
                {
                    "type": "create_record",
                    "options": {"collection": "notes", "values": {"text": {"from": "status"}}},
                },
                {"type": "set_field", "options": {"field": "title", "from": "status"}},
            ],
        },
    )
    key = await api.key(["records:read"], collections=["orders"])
    return {"webhook": hook, "workflow": flow, "key": key}


async def test_renames_with_no_grace_keep_policies_workflows_webhooks_and_keys_working(
    make_settings: Callable[..., Settings], jobs_db: str, receiver: Receiver
) -> None:
    async with deployment(make_settings, jobs_db) as api:
        made = await orders_with_everything(api, receiver.url)
        user = await api.user("reader@example.com")

        preview = (
            await api.preview("rename_field", collection="orders", field="status", new_name="state")
        ).json()
        assert sorted(d["kind"] for d in preview["impact"]["dependents"]) == [
            "policy",
            "workflow",
            "workflow",
            "workflow",
        ]
        renamed = await apply(
            api, "rename_field", collection="orders", field="status", new_name="state", grace_days=0
        )
        assert {item["kind"] for item in renamed["result"]["references_rewritten"]} == {
            "policy",
            "workflow",
        }
        renamed = await apply(
            api, "rename_collection", collection="orders", new_name="purchases", grace_days=0
        )
        assert {item["kind"] for item in renamed["result"]["references_rewritten"]} == {
            "api_key",
            "webhook",
            "workflow",
        }

        stored = (
            await api.client.get(
                api.url(f"/workflows/{made['workflow']['id']}"), headers=api.headers
            )
        ).json()
        assert stored["trigger"]["collection"] == "purchases"
        assert stored["trigger"]["condition"] == "state = 'paid'"
        assert stored["actions"][0]["options"]["values"] == {"text": {"from": "state"}}
        assert stored["actions"][1]["options"] == {"field": "title", "from": "state"}

        paid = await api.create("purchases", {"title": "a", "state": "paid"})
        await api.create("purchases", {"title": "b", "state": "open"})

        # The workflow fires for the paid one only, with every step on the new names.
        async def finished() -> list[dict[str, Any]]:
            found = await runs(api, made["workflow"]["id"])
            return found if found and found[0]["status"] == "succeeded" else []

        (run,) = await eventually(finished)
        assert run["input"]["record_id"] == paid["id"]
        notes = await api.client.get(api.url("/collections/notes/records"), headers=api.headers)
        assert [n["text"] for n in notes.json()["data"]] == ["paid"]

        # The webhook hears both inserts under the new collection name.
        async def two() -> list[dict[str, Any]]:
            found = await _succeeded(api, made["webhook"]["id"])
            return found if len(found) == 2 else []

        assert {d["event"] for d in await eventually(two)} == {"purchases.insert"}

        # The policy still lets the user list the paid purchase only.
        listed = await api.client.get(api.url("/collections/purchases/records"), headers=user)
        assert listed.status_code == 200, listed.text
        assert [r["id"] for r in listed.json()["data"]] == [paid["id"]]

        # The key restricted to orders follows it to purchases.
        by_key = await api.client.get(
            api.url("/collections/purchases/records"), headers=made["key"]
        )
        assert by_key.status_code == 200, by_key.text


async def test_drop_warns_and_purge_refuses_listing_every_dependent_kind(
    make_settings: Callable[..., Settings],
    jobs_db: str,
    receiver: Receiver,
) -> None:
    async with deployment(make_settings, jobs_db) as api:
        await orders_with_everything(api, receiver.url)
        view = await api.client.post(
            api.url("/views"),
            json={"name": "open_orders", "base_collection": "orders", "projection": ["title"]},
            headers=api.headers,
        )
        assert view.status_code == 201, view.text

        dropped = await apply(api, "drop_collection", collection="orders")
        kinds = {d["kind"] for d in dropped["impact"]["dependents"]}
        assert kinds == {"api_key", "webhook", "workflow", "view"}
        assert any(
            w == "view 'open_orders' v1 (base collection) depends on it"
            for w in dropped["warnings"]
        )

        response = await api.client.patch(
            f"/api/projects/{api.project}",
            json={"settings": {"purge_retention_days": 0}},
            headers=api.headers,
        )
        assert response.status_code == 200, response.text
        preview = await api.preview("purge_collection", collection="orders", confirm="orders")
        assert preview.status_code == 200, preview.text
        assert {d["kind"] for d in preview.json()["impact"]["dependents"]} == kinds

        refused = await api.apply("purge_collection", collection="orders", confirm="orders")
        assert refused.status_code == 409, refused.text
        problem = refused.json()["errors"][0]
        assert problem["code"] == "has_dependents"
        for kind in ("api_key", "webhook", "workflow", "view"):
            assert f"{kind} " in problem["message"], kind
        restored = await apply(api, "restore_collection", collection="orders")
        assert restored["result"]["is_deleted"] is False


async def test_a_field_in_a_policy_cannot_be_dropped_and_a_workflow_field_warns(
    make_settings: Callable[..., Settings], jobs_db: str, receiver: Receiver
) -> None:
    async with deployment(make_settings, jobs_db) as api:
        await orders_with_everything(api, receiver.url)
        refused = await api.apply("drop_field", collection="orders", field="status")
        assert refused.status_code == 409, refused.text
        problem = refused.json()["errors"][0]
        assert problem["code"] == "field_in_use"
        assert "policy list on orders (rule names status)" in problem["message"]

        await api.set_policies("orders", list="", read="", create="")
        dropped = await apply(api, "drop_field", collection="orders", field="status")
        assert [d["kind"] for d in dropped["impact"]["dependents"]] == ["workflow"] * 3
        retyped = await apply(
            api, "change_field_type", collection="orders", field="title", new_type="text"
        )
        assert [d["detail"] for d in retyped["impact"]["dependents"]] == [
            "action 2 (set_field) names it"
        ]
