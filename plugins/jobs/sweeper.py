"""The sweeper: re-enqueues deliveries and runs that are overdue, whatever the reason (a
message lost by the broker, a worker killed mid-job whose claim expired), and publishes the
queue-depth metrics."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from plugins.jobs.metrics import QUEUE_DEPTH

if TYPE_CHECKING:
    from plugins.jobs.host import JobHost

log = logging.getLogger(__name__)

OVERDUE = """
    SELECT id FROM tessera.{table}
     WHERE (status = 'pending' AND next_attempt_at < now() - make_interval(secs => $1))
        OR (status = '{active}' AND lease_expires_at < now())
     ORDER BY next_attempt_at
     LIMIT 500
"""


class Sweeper:
    def __init__(self, host: JobHost) -> None:
        self.host = host

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.host.config.sweep_interval)
            try:
                if await self.host.leader.held():
                    await self.sweep_once()
            except Exception:
                log.exception("sweep failed; retrying")

    async def sweep_once(self) -> tuple[list[int], list[int]]:
        overdue_after = self.host.config.overdue_after
        async with self.host.tessera.db.pool.acquire() as conn:
            deliveries = [
                row["id"]
                for row in await conn.fetch(
                    OVERDUE.format(table="webhook_deliveries", active="delivering"), overdue_after
                )
            ]
            runs = [
                row["id"]
                for row in await conn.fetch(
                    OVERDUE.format(table="workflow_runs", active="running"), overdue_after
                )
            ]
            depth = await conn.fetchrow(
                "SELECT (SELECT count(*) FROM tessera.webhook_deliveries"
                "        WHERE status IN ('pending', 'delivering')) AS deliveries,"
                "       (SELECT count(*) FROM tessera.workflow_runs"
                "        WHERE status IN ('pending', 'running')) AS runs"
            )
        QUEUE_DEPTH.labels("webhook_deliveries").set(depth["deliveries"])
        QUEUE_DEPTH.labels("workflow_runs").set(depth["runs"])
        if deliveries or runs:
            log.info("re-enqueueing %d deliveries and %d runs", len(deliveries), len(runs))
        await self.host.enqueue_deliveries(deliveries)
        await self.host.enqueue_runs(runs)
        return deliveries, runs
