"""When old names were last used: lets previews tell who still relies on an alias."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from datetime import UTC, datetime

from kernel.catalog.model import AliasDef
from kernel.db.engine import Database
from kernel.db.schema import aliases

log = logging.getLogger(__name__)


class AliasUsage:
    """Collects aliases used by requests and records ``last_used_at`` in batches."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._used: set[int] = set()

    def record(self, used: Iterable[AliasDef | None]) -> None:
        self._used.update(alias.id for alias in used if alias is not None)

    async def flush(self) -> None:
        if not self._used:
            return
        used, self._used = self._used, set()
        async with self.db.engine.begin() as conn:
            await conn.execute(
                aliases.update()
                .where(aliases.c.id.in_(sorted(used)))
                .values(last_used_at=datetime.now(UTC))
            )

    async def run_flusher(self, every: float = 30.0) -> None:
        while True:
            await asyncio.sleep(every)
            try:
                await self.flush()
            except Exception:
                log.exception("could not record alias usage")
