"""The dispatcher's passes over projects with and without subscribers
(plugins/jobs/dispatch.py).

A pass reads its batch's positions and projects, asks which of those projects have an
active webhook or workflow, and reads in full only a batch holding events of such a
project. These tests start after a pass that found no subscriber in the project and change
subscribers through the API, through another app and by plain SQL (no message to any bus):
later events must reach exactly the active subscribers, once each.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import asyncpg

from kernel.config import Settings
from kernel.events.reader import Position, read_event_heads, read_events
from plugins.jobs.dispatch import BATCH
from plugins.jobs.host import JobHost
from tests.conftest import Api, running
from tests.receiver import Receiver
from tests.test_jobs import (
    FAST,
    deployment,
    eventually,
    orders,
    outbox,
    runs,
    webhook,
    workflow,
)


def jobs_host(api: Api) -> JobHost:
    return api.client.app.state.tessera.state["jobs"]  # type: ignore[attr-defined]


async def all_dispatched(conn: asyncpg.Connection) -> bool:
    """Whether the dispatcher's cursor is past every event in the outbox."""
    return not await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM tessera.events e, tessera.job_cursors c"
        " WHERE c.name = 'dispatcher'"
        " AND (e.xact_id::text::bigint, e.id) > (c.xact_id, c.event_id))"
    )


async def passed_without_subscribers(api: Api, conn: asyncpg.Connection) -> None:
    """Write, and wait for the pass that consumes the write: a pass that found no
    subscriber in the project (and recorded nothing)."""
    await api.create("orders", {"title": "nobody listens"})
    await eventually(lambda: all_dispatched(conn))
    assert await conn.fetchval("SELECT count(*) FROM tessera.webhook_deliveries") == 0


async def delivered_records(conn: asyncpg.Connection, webhook_id: int) -> list[int]:
    """The record ids of a webhook's deliveries, in event order."""
    rows = await conn.fetch(
        "SELECT (payload->>'record_id')::bigint AS record FROM tessera.webhook_deliveries"
        " WHERE webhook_id = $1 ORDER BY event_id",
        webhook_id,
    )
    return [row["record"] for row in rows]


async def settle(api: Api, conn: asyncpg.Connection, title: str) -> dict[str, Any]:
    """Create a record and wait until the dispatcher consumed its event."""
    record = await api.create("orders", {"title": title})
    await eventually(lambda: all_dispatched(conn))
    return record


async def test_webhooks_created_deactivated_and_deleted_after_a_pass_that_found_none(
    make_settings: Callable[..., Settings], jobs_db: str, receiver: Receiver
) -> None:
    async with deployment(make_settings, jobs_db) as api, outbox(jobs_db) as conn:
        await orders(api)
        await passed_without_subscribers(api, conn)

        hook = await webhook(api, receiver.url)
        first = await settle(api, conn, "first")
        assert await delivered_records(conn, hook["id"]) == [first["id"]]

        # deactivated and reactivated with plain SQL: no API call, no bus message
        await conn.execute("UPDATE tessera.webhooks SET active = false WHERE id = $1", hook["id"])
        await settle(api, conn, "while off")
        assert await delivered_records(conn, hook["id"]) == [first["id"]]
        await conn.execute("UPDATE tessera.webhooks SET active = true WHERE id = $1", hook["id"])
        back = await settle(api, conn, "back on")
        assert await delivered_records(conn, hook["id"]) == [first["id"], back["id"]]

        deleted = await api.client.delete(api.url(f"/webhooks/{hook['id']}"), headers=api.headers)
        assert deleted.status_code == 204
        await settle(api, conn, "after the delete")
        assert await conn.fetchval("SELECT count(*) FROM tessera.webhook_deliveries") == 0


async def test_a_workflow_paused_and_resumed_runs_only_while_active(
    make_settings: Callable[..., Settings], jobs_db: str
) -> None:
    async with deployment(make_settings, jobs_db) as api, outbox(jobs_db) as conn:
        await orders(api)
        await passed_without_subscribers(api, conn)
        flow = await workflow(
            api,
            {
                "name": "stamp",
                "trigger": {"collection": "orders", "events": ["insert"]},
                "actions": [{"type": "set_field", "options": {"field": "status", "value": "x"}}],
            },
        )

        async def run_records() -> list[int]:
            return sorted(run["input"]["record_id"] for run in await runs(api, flow["id"]))

        first = await settle(api, conn, "first")
        assert await run_records() == [first["id"]]
        for active in (False, True):
            patched = await api.client.patch(
                api.url(f"/workflows/{flow['id']}"), json={"active": active}, headers=api.headers
            )
            assert patched.status_code == 200, patched.text
            latest = await settle(api, conn, f"active: {active}")
        assert await run_records() == [first["id"], latest["id"]]


async def test_a_webhook_created_through_another_app_reaches_the_leaders_dispatcher(
    make_settings: Callable[..., Settings], jobs_db: str, receiver: Receiver
) -> None:
    """App A leads and has passed over the project finding no subscriber; app B (another
    kernel, pool and bus) creates the webhook and writes. A's next pass delivers B's write."""
    async with deployment(make_settings, jobs_db) as a, outbox(jobs_db) as conn:
        await orders(a)
        await passed_without_subscribers(a, conn)
        settings = make_settings(database_url=jobs_db, plugins={"config": {"jobs": FAST}})
        async with running(settings) as client_b:
            b = Api(client_b, a.headers, a.project)
            assert await jobs_host(a).leader.held()
            assert not await jobs_host(b).leader.held()
            hook = await webhook(b, receiver.url)
            record = await b.create("orders", {"title": "from b"})
            await eventually(lambda: all_dispatched(conn))
            assert await delivered_records(conn, hook["id"]) == [record["id"]]
            await eventually(lambda: asyncio.sleep(0, result=receiver.requests))


async def test_a_webhook_gets_the_events_written_after_it_was_created_and_no_earlier_ones(
    make_settings: Callable[..., Settings], jobs_db: str, receiver: Receiver
) -> None:
    """Events committed after the webhook, stamped just before and just after its
    creation time: the dispatcher's ``created_at`` rule still decides."""
    async with deployment(make_settings, jobs_db) as api, outbox(jobs_db) as conn:
        await orders(api)
        await passed_without_subscribers(api, conn)
        hook = await webhook(api, receiver.url)
        collection_id = await conn.fetchval(
            "SELECT id FROM tessera.collections WHERE project_id = $1 AND name = 'orders'",
            api.project,
        )
        for record_id, offset in [(700001, "-1 second"), (700002, "1 second")]:
            await conn.execute(
                "INSERT INTO tessera.events (project_id, collection_id, collection, record_id,"
                " type, changed_fields, row, meta, created_at)"
                " SELECT $1, $2, 'orders', $3::bigint, 'insert', '{}', jsonb_build_object('id', $3::bigint),"
                " '{}', created_at + $4::text::interval FROM tessera.webhooks WHERE id = $5",
                api.project,
                collection_id,
                record_id,
                offset,
                hook["id"],
            )
        await eventually(lambda: all_dispatched(conn))
        assert await delivered_records(conn, hook["id"]) == [700002]


async def test_batches_mixing_projects_with_and_without_subscribers_lose_and_repeat_nothing(
    make_settings: Callable[..., Settings], jobs_db: str, receiver: Receiver
) -> None:
    """More than two batches of events, three transactions, two projects interleaved (one
    with a webhook, one with none): every event of the subscribed project gets exactly one
    delivery, and the cursor ends after the last event."""
    per_transaction = BATCH * 2 // 3
    async with deployment(make_settings, jobs_db) as api, outbox(jobs_db) as conn:
        await orders(api)
        await passed_without_subscribers(api, conn)
        hook = await webhook(api, receiver.url, ["orders.insert"])
        collection_id = await conn.fetchval(
            "SELECT id FROM tessera.collections WHERE project_id = $1 AND name = 'orders'",
            api.project,
        )
        expected: list[int] = []
        for transaction in range(3):
            first = transaction * per_transaction
            rows = await conn.fetch(
                "INSERT INTO tessera.events (project_id, collection_id, collection, record_id,"
                " type, changed_fields, row)"
                " SELECT CASE WHEN n % 3 = 0 THEN $1 ELSE 'nobody' END, $2, 'orders', n,"
                " 'insert', '{}', jsonb_build_object('id', n, 'title', 'bulk')"
                " FROM generate_series($3::bigint, $4::bigint) AS n"
                " RETURNING project_id, record_id",
                api.project,
                collection_id,
                first,
                first + per_transaction - 1,
            )
            expected += [row["record_id"] for row in rows if row["project_id"] == api.project]
        await eventually(lambda: all_dispatched(conn), within=60)
        assert sorted(await delivered_records(conn, hook["id"])) == sorted(expected)
        assert len(expected) == per_transaction
        cursor = await conn.fetchrow(
            "SELECT xact_id, event_id FROM tessera.job_cursors WHERE name = 'dispatcher'"
        )
        assert cursor["event_id"] == await conn.fetchval("SELECT max(id) FROM tessera.events")


async def test_event_heads_stop_at_an_earlier_horizon_and_full_reads_match_them(
    jobs_db: str,
) -> None:
    """``read_event_heads(final_below=...)`` leaves out events committed after the
    statement that read the horizon; ``read_events(through=...)`` reads exactly the
    events the heads stand for."""
    async with outbox(jobs_db) as reader, outbox(jobs_db) as writer:

        async def add(project: str) -> None:
            await writer.execute(
                "INSERT INTO tessera.events (project_id, collection_id, collection, record_id,"
                " type, changed_fields, row) VALUES ($1, 1, 'orders', 1, 'insert', '{}',"
                " '{\"id\": 1}')",
                project,
            )

        start = Position()
        for project in ("p1", "p2", "p1"):
            await add(project)
        async with reader.transaction():
            horizon = await reader.fetchval(
                "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint"
            )
            await add("late")
            heads = await read_event_heads(reader, start, final_below=horizon)
            assert [head.project_id for head in heads] == ["p1", "p2", "p1"]
            current = await read_event_heads(reader, start)
            assert [head.project_id for head in current] == ["p1", "p2", "p1", "late"]
            events = await read_events(reader, start, through=heads[-1].position)
            assert [event.position for event in events] == [head.position for head in heads]
            assert [event.project_id for event in events] == ["p1", "p2", "p1"]
            limited = await read_event_heads(reader, heads[0].position, limit=1)
            assert [head.position for head in limited] == [heads[1].position]
