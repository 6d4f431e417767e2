"""The dispatcher: turns committed outbox events into webhook deliveries and workflow runs.

It reads the outbox in commit order from its own cursor (``tessera.job_cursors``), inserts
the deliveries and runs *in the same transaction* as it moves the cursor, and enqueues them
after commit. If enqueueing is lost, the sweeper finds the rows; if the process dies before
commit, nothing moved and the next leader starts from the same place.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from kernel import NotFound
from kernel.events.reader import Event, Position, head_position, read_events
from kernel.expr import ExpressionError
from plugins.jobs.conditions import bind_condition, condition_holds
from plugins.jobs.matching import CollectionIds, payload, webhook_wants, workflow_wants

if TYPE_CHECKING:
    from plugins.jobs.host import JobHost

log = logging.getLogger(__name__)

CURSOR = "dispatcher"
BATCH = 500


class Dispatcher:
    def __init__(self, host: JobHost) -> None:
        self.host = host
        self.tessera = host.tessera

    async def run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.host.wake.wait(), self.host.config.poll_interval)
            self.host.wake.clear()
            try:
                if await self.host.leader.held():
                    while await self.dispatch_once() == BATCH:
                        pass
            except Exception:
                log.exception("dispatcher pass failed; retrying")

    async def ensure_cursor(self) -> None:
        """On the very first start, begin at the present: older events predate every
        webhook and workflow. Called before the process serves, so no write is missed."""
        async with self.tessera.db.pool.acquire() as conn:
            start = await head_position(conn)
            await conn.execute(
                "INSERT INTO tessera.job_cursors (name, xact_id, event_id) VALUES ($1, $2, $3)"
                " ON CONFLICT (name) DO NOTHING",
                CURSOR,
                start.xact_id,
                start.id,
            )

    async def dispatch_once(self) -> int:
        """One batch: returns how many events it consumed."""
        async with self.tessera.db.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "SELECT xact_id, event_id FROM tessera.job_cursors WHERE name = $1 FOR UPDATE",
                CURSOR,
            )
            events = await read_events(conn, Position(row["xact_id"], row["event_id"]), limit=BATCH)
            if not events:
                return 0
            deliveries, runs = await self._plan(conn, events)
            delivery_ids = await self._insert_deliveries(conn, deliveries)
            run_ids = await self._insert_runs(conn, runs)
            last = events[-1].position
            await conn.execute(
                "UPDATE tessera.job_cursors SET xact_id = $2, event_id = $3, updated_at = now()"
                " WHERE name = $1",
                CURSOR,
                last.xact_id,
                last.id,
            )
        await self.host.enqueue_deliveries(delivery_ids)
        await self.host.enqueue_runs(run_ids)
        return len(events)

    async def _plan(self, conn: Any, events: list[Event]) -> tuple[list[tuple], list[tuple]]:
        projects = sorted({event.project_id for event in events})
        hooks = defaultdict(list)
        for hook in await conn.fetch(
            "SELECT id, project_id, events, created_at FROM tessera.webhooks"
            " WHERE active AND project_id = ANY($1)",
            projects,
        ):
            hooks[hook["project_id"]].append(hook)
        flows = defaultdict(list)
        for flow in await conn.fetch(
            "SELECT id, project_id, trigger, created_at FROM tessera.workflows"
            " WHERE active AND project_id = ANY($1)",
            projects,
        ):
            flows[flow["project_id"]].append(flow)

        deliveries: list[tuple] = []
        runs: list[tuple] = []
        max_depth = self.host.config.workflow_max_depth
        collection_ids = {project: await self._collection_ids(project) for project in hooks}
        for event in events:
            for hook in hooks[event.project_id]:
                if hook["created_at"] <= event.created_at and webhook_wants(
                    hook["events"], event, collection_ids[event.project_id]
                ):
                    deliveries.append((hook["id"], event))
            for flow in flows[event.project_id]:
                if flow["created_at"] > event.created_at or not workflow_wants(
                    flow["trigger"], event
                ):
                    continue
                depth = int(event.meta.get("depth", 0))
                if depth >= max_depth:
                    runs.append((flow["id"], event, depth, "cut_off"))
                elif await self._condition(flow, event):
                    runs.append((flow["id"], event, depth, "pending"))
        return deliveries, runs

    async def _collection_ids(self, project_id: str) -> CollectionIds:
        """What a collection name in a webhook pattern names in the project, now."""
        try:
            catalog = await self.tessera.catalog.get(project_id)
        except NotFound:
            return lambda name: None  # the project is being deleted
        now = datetime.now(UTC)

        def collection_id(name: str) -> int | None:
            resolved = catalog.resolve_collection(name, now)
            return None if resolved is None else resolved[0].id

        return collection_id

    async def _condition(self, flow: Any, event: Event) -> bool:
        text = flow["trigger"].get("condition")
        if not text:
            return True
        catalog = await self.tessera.catalog.get(event.project_id)
        collection = catalog.collection_by_id(event.collection_id)
        if collection is None:
            return False
        try:
            bound = bind_condition(text, collection, self.tessera.operators)
        except ExpressionError:
            log.warning("workflow %s: condition no longer binds; not running it", flow["id"])
            return False
        return condition_holds(bound, collection, event)

    @staticmethod
    async def _insert_deliveries(conn: Any, deliveries: list[tuple]) -> list[int]:
        ids = []
        for webhook_id, event in deliveries:
            delivery_id = await conn.fetchval(
                "INSERT INTO tessera.webhook_deliveries"
                " (webhook_id, project_id, event_id, event_type, payload)"
                " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (webhook_id, event_id) DO NOTHING"
                " RETURNING id",
                webhook_id,
                event.project_id,
                event.id,
                f"{event.collection}.{event.type}",
                payload(event),
            )
            if delivery_id is not None:
                ids.append(delivery_id)
        return ids

    @staticmethod
    async def _insert_runs(conn: Any, runs: list[tuple]) -> list[int]:
        ids = []
        for workflow_id, event, depth, status in runs:
            run_input = {**payload(event), "meta": event.meta}
            error = (
                None
                if status == "pending"
                else f"stopped: this run would be {depth + 1} workflow steps deep (the limit "
                "guards against workflows that trigger themselves)"
            )
            run_id = await conn.fetchval(
                "INSERT INTO tessera.workflow_runs"
                " (workflow_id, project_id, event_id, input, depth, status, error, finished_at)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7,"
                " CASE WHEN $6 = 'pending' THEN NULL ELSE now() END)"
                " ON CONFLICT (workflow_id, event_id) DO NOTHING RETURNING id",
                workflow_id,
                event.project_id,
                event.id,
                run_input,
                depth,
                status,
                error,
            )
            if run_id is not None and status == "pending":
                ids.append(run_id)
        return ids


async def dispatched_up_to(conn: Any) -> Position | None:
    """The dispatcher's position: every event up to it has its deliveries and runs (the
    outbox's retention keeps everything after it)."""
    row = await conn.fetchrow(
        "SELECT xact_id, event_id FROM tessera.job_cursors WHERE name = $1", CURSOR
    )
    return None if row is None else Position(row["xact_id"], row["event_id"])
