"""Outbox retention: ``tessera.events`` keeps a window of events, and every event a reader
still has to read.

Every process runs :meth:`EventRetention.run` (``events_prune_interval_seconds`` apart).
A pass deletes events older than ``events_retention_days`` in batches of :data:`BATCH`,
each batch in its own short transaction under a transaction-scoped advisory lock that a
process which does not get it simply skips, so passes never pile up and deleting is
idempotent. The search for old events uses the BRIN index on ``created_at``.

Readers that must not miss an event — the jobs plugin's dispatcher, which turns events into
webhook deliveries and workflow runs — register their position at startup with
:meth:`EventRetention.keep_unread`; no event after the oldest such position is deleted,
however old it is. Realtime clients that resume from a cursor miss nothing within the
window; events older than the window are gone.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import asyncpg

from kernel.db.engine import Database
from kernel.events.reader import Position

log = logging.getLogger(__name__)

#: Events deleted per transaction.
BATCH = 5000
#: Advisory lock key of a pruning batch (any constant shared by every process).
LOCK_KEY = 0x7E55E8E
#: A position after every event: where pruning may go when no reader holds it back.
AFTER_EVERYTHING = Position(2**63 - 1, 2**63 - 1)

#: Reads a reader's position: the last event it is done with, or None when it has none yet
#: (then nothing is deleted).
PositionOf = Callable[[asyncpg.Connection], Awaitable[Position | None]]


class EventRetention:
    """Deletes outbox events older than ``retention_days`` that every registered reader
    has read."""

    def __init__(
        self, db: Database, retention_days: float, interval: float, batch: int = BATCH
    ) -> None:
        self.db = db
        self.retention_seconds = retention_days * 86400
        self.interval = interval
        self.batch = batch
        self._readers: dict[str, PositionOf] = {}

    def keep_unread(self, reader: str, position_of: PositionOf) -> None:
        """Never delete an event after ``await position_of(conn)`` (called on every pass,
        on a pooled connection). ``reader`` names it in logs; registering a name again
        replaces its function."""
        self._readers[reader] = position_of

    async def run(self) -> None:
        """Prune every ``interval`` seconds until cancelled; a failed pass is logged."""
        while True:
            await asyncio.sleep(self.interval)
            try:
                deleted = await self.prune()
            except Exception:
                log.exception("pruning tessera.events failed; trying again in %ss", self.interval)
            else:
                if deleted:
                    log.info("pruned %d events older than the retention window", deleted)

    async def prune(self) -> int:
        """One pass: delete what the window and the readers allow; returns how many."""
        total = 0
        while True:
            deleted = await self._prune_batch()
            total += deleted
            if deleted < self.batch:
                return total

    async def _prune_batch(self) -> int:
        async with self.db.pool.acquire() as conn, conn.transaction():
            if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", LOCK_KEY):
                return 0  # another process is pruning right now
            floor = await self._floor(conn)
            if floor is None:
                return 0
            status = await conn.execute(
                "DELETE FROM tessera.events WHERE id IN ("
                " SELECT id FROM tessera.events"
                " WHERE created_at < now() - make_interval(secs => $1)"
                " AND (xact_id, id) <= ($2::text::xid8, $3::bigint) LIMIT $4)",
                self.retention_seconds,
                str(floor.xact_id),
                floor.id,
                self.batch,
            )
        return int(status.rsplit(" ", 1)[-1])

    async def _floor(self, conn: asyncpg.Connection) -> Position | None:
        """The oldest position of every reader (None: a reader has none, keep all)."""
        floor = AFTER_EVERYTHING
        for reader, position_of in self._readers.items():
            position = await position_of(conn)
            if position is None:
                log.debug("outbox reader %s has no position yet: not pruning", reader)
                return None
            floor = min(floor, position)
        return floor
