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
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from kernel import NotFound
from kernel.events.reader import (
    Event,
    Position,
    head_position,
    read_event_heads,
    read_events,
)
from kernel.expr import ExpressionError
from plugins.jobs.conditions import bind_condition, condition_holds
from plugins.jobs.matching import (
    CollectionIds,
    event_name,
    payload,
    webhook_wants,
    workflow_wants,
)
from plugins.jobs.metrics import DISPATCH_FAILURES

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
        """One batch: returns how many events it consumed.

        The batch is first read without payloads (positions and projects). Events of
        projects with no active webhook or workflow are consumed without being decoded;
        only when the batch holds an event of a project that has subscribers is the same
        batch read in full. Which of the batch's projects have subscribers is asked in the
        pass, after its events were read: a webhook or workflow committed before an event
        was final is always seen by the pass that consumes the event, whichever process
        changed it, with no cache and no message to lose. (A counter bumped by a trigger
        on every change, read instead of asking, would make every webhook and workflow
        write in every project wait for one row, and deadlock against a rename's
        reference rewrite that locks webhooks and workflows in turn.)

        Each event is planned and recorded on its own (a savepoint): an event that cannot
        be (unreadable metadata, a payload PostgreSQL refuses) gets its deliveries and runs
        recorded ``failed`` with the error, is logged and counted
        (``tessera_dispatch_failures_total``), and the batch goes on. One event never
        holds back the others."""
        delivery_ids: list[int] = []
        run_ids: list[int] = []
        async with self.tessera.db.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "SELECT xact_id, event_id,"
                " pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS horizon"
                " FROM tessera.job_cursors WHERE name = $1 FOR UPDATE",
                CURSOR,
            )
            after = Position(row["xact_id"], row["event_id"])
            heads = await read_event_heads(conn, after, limit=BATCH, final_below=row["horizon"])
            if not heads:
                return 0
            last = heads[-1].position
            subscribed = await _subscribed_projects(conn, {head.project_id for head in heads})
            if any(head.project_id in subscribed for head in heads):
                events = await read_events(conn, after, limit=BATCH, through=last)
                subscribers = await self._subscribers(conn, events, subscribed)
                for event in events:
                    jobs = await self._jobs(subscribers, event)
                    for job, job_id in await self._record(conn, event, jobs):
                        if job_id is not None and job.status == "pending":
                            (delivery_ids if job.kind == "delivery" else run_ids).append(job_id)
            await conn.execute(
                "UPDATE tessera.job_cursors SET xact_id = $2, event_id = $3, updated_at = now()"
                " WHERE name = $1",
                CURSOR,
                last.xact_id,
                last.id,
            )
        await self.host.enqueue_deliveries(delivery_ids)
        await self.host.enqueue_runs(run_ids)
        return len(heads)

    async def _subscribers(
        self, conn: Any, events: list[Event], subscribed: frozenset[str]
    ) -> Subscribers:
        """The active webhooks and workflows of the batch's projects (of those among
        ``subscribed``: the others have none)."""
        projects = sorted({event.project_id for event in events} & subscribed)
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
        collection_ids = {project: await self._collection_ids(project) for project in hooks}
        return Subscribers(hooks, flows, collection_ids)

    async def _jobs(self, subscribers: Subscribers, event: Event) -> list[Job]:
        """What ``event`` asks of each webhook and workflow; a subscriber whose decision
        raises gets a ``failed`` job carrying the error."""
        jobs: list[Job] = []
        for hook in subscribers.hooks[event.project_id]:
            try:
                if hook["created_at"] <= event.created_at and webhook_wants(
                    hook["events"], event, subscribers.collection_ids[event.project_id]
                ):
                    jobs.append(Job("delivery", hook["id"], "pending"))
            except Exception as error:
                jobs.append(Job("delivery", hook["id"], "failed", error=_describe(error)))
        max_depth = self.host.config.workflow_max_depth
        for flow in subscribers.flows[event.project_id]:
            try:
                if flow["created_at"] > event.created_at or not workflow_wants(
                    flow["trigger"], event
                ):
                    continue
                depth = int(event.meta.get("depth", 0))
                if depth >= max_depth:
                    jobs.append(Job("run", flow["id"], "cut_off", depth))
                elif await self._condition(flow, event):
                    jobs.append(Job("run", flow["id"], "pending", depth))
            except Exception as error:
                jobs.append(Job("run", flow["id"], "failed", error=_describe(error)))
        return jobs

    async def _record(
        self, conn: Any, event: Event, jobs: list[Job]
    ) -> list[tuple[Job, int | None]]:
        """Insert ``jobs`` (each with its new id, None when it existed already). If the
        database refuses them, they are recorded ``failed`` with the error instead."""
        if not jobs:
            return []
        try:
            async with conn.transaction():
                return [(job, await _insert(conn, event, job)) for job in jobs]
        except Exception as error:
            failed = [job.failed(_describe(error)) for job in jobs]
        async with conn.transaction():
            return [(job, await _insert(conn, event, job)) for job in failed]

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


@dataclass(frozen=True, slots=True)
class Subscribers:
    """The batch's active webhooks and workflows by project, and what collection names in
    the webhooks' patterns name."""

    hooks: dict[str, list[Any]]
    flows: dict[str, list[Any]]
    collection_ids: dict[str, CollectionIds]


@dataclass(frozen=True, slots=True)
class Job:
    """A delivery to a webhook or a run of a workflow, about to be recorded."""

    kind: Literal["delivery", "run"]
    target_id: int
    status: Literal["pending", "cut_off", "failed"]
    depth: int = 0
    error: str | None = None

    def failed(self, error: str) -> Job:
        return Job(self.kind, self.target_id, "failed", self.depth, error)


async def _subscribed_projects(conn: Any, projects: set[str]) -> frozenset[str]:
    """Those of ``projects`` with an active webhook or workflow."""
    rows = await conn.fetch(
        "SELECT project_id FROM tessera.webhooks WHERE active AND project_id = ANY($1)"
        " UNION SELECT project_id FROM tessera.workflows WHERE active AND project_id = ANY($1)",
        sorted(projects),
    )
    return frozenset(row["project_id"] for row in rows)


def _describe(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"


async def _insert(conn: Any, event: Event, job: Job) -> int | None:
    """Record ``job`` for ``event``; its id, or None when it was recorded before. A failed
    job is logged and counted, and carries the event without its record (which may be
    what failed)."""
    if job.status == "failed":
        log.error(
            "event %s of project %s could not be dispatched to %s %s: %s",
            event.id,
            event.project_id,
            "webhook" if job.kind == "delivery" else "workflow",
            job.target_id,
            job.error,
        )
        DISPATCH_FAILURES.labels(job.kind).inc()
        body = {**payload(event), "record": None}
        error = f"the event could not be dispatched: {job.error}"
    else:
        body = payload(event)
        error = None
    if job.kind == "delivery":
        return await conn.fetchval(
            "INSERT INTO tessera.webhook_deliveries"
            " (webhook_id, project_id, event_id, event_type, payload, status, last_error)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7)"
            " ON CONFLICT (webhook_id, event_id) DO NOTHING RETURNING id",
            job.target_id,
            event.project_id,
            event.id,
            event_name(event),
            body,
            job.status,
            error,
        )
    if job.status == "cut_off":
        error = (
            f"stopped: this run would be {job.depth + 1} workflow steps deep (the limit "
            "guards against workflows that trigger themselves)"
        )
    meta = {} if job.status == "failed" else event.meta
    return await conn.fetchval(
        "INSERT INTO tessera.workflow_runs"
        " (workflow_id, project_id, event_id, input, depth, status, error, finished_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7,"
        " CASE WHEN $6 = 'pending' THEN NULL ELSE now() END)"
        " ON CONFLICT (workflow_id, event_id) DO NOTHING RETURNING id",
        job.target_id,
        event.project_id,
        event.id,
        {**body, "meta": meta},
        job.depth,
        job.status,
        error,
    )


async def dispatched_up_to(conn: Any) -> Position | None:
    """The dispatcher's position: every event up to it has its deliveries and runs (the
    outbox's retention keeps everything after it)."""
    row = await conn.fetchrow(
        "SELECT xact_id, event_id FROM tessera.job_cursors WHERE name = $1", CURSOR
    )
    return None if row is None else Position(row["xact_id"], row["event_id"])
