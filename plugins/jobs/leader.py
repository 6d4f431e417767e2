"""One dispatcher and one sweeper for the whole deployment: a session advisory lock held
on a dedicated connection. If that connection dies, the lock goes with it and another
process takes over.

A process that does not lead keeps its connection too and tries the lock again at most
once per ``retry_interval``: the dispatcher asks on every write burst, and opening a
connection per question would cost more than the writes themselves.
"""

from __future__ import annotations

import contextlib
import time

import asyncpg

from kernel import KernelSurface

LOCK_KEY = 0x7E55E7B  # any constant shared by every process


class LeaderLock:
    def __init__(self, tessera: KernelSurface, retry_interval: float) -> None:
        self.tessera = tessera
        self.retry_interval = retry_interval
        self._connection: asyncpg.Connection | None = None
        self._leading = False
        self._next_try = 0.0

    async def held(self) -> bool:
        """Whether this process leads, trying to become leader if nobody does."""
        if self._connection is not None and self._connection.is_closed():
            self._connection = None
            self._leading = False
        if self._leading:
            return True
        now = time.monotonic()
        if now < self._next_try:
            return False
        self._next_try = now + self.retry_interval
        try:
            if self._connection is None:
                self._connection = await self.tessera.db.dedicated_connection()
            self._leading = bool(
                await self._connection.fetchval("SELECT pg_try_advisory_lock($1)", LOCK_KEY)
            )
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            await self.release()
        return self._leading

    async def release(self) -> None:
        if self._connection is not None and not self._connection.is_closed():
            with contextlib.suppress(Exception):
                await self._connection.close()
        self._connection = None
        self._leading = False
