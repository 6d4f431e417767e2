"""One dispatcher and one sweeper for the whole deployment: a session advisory lock held
on a dedicated connection. If that connection dies, the lock goes with it and another
process takes over."""

from __future__ import annotations

import contextlib
from typing import Any

import asyncpg

LOCK_KEY = 0x7E55E7B  # any constant shared by every process


class LeaderLock:
    def __init__(self, tessera: Any) -> None:
        self.tessera = tessera
        self._connection: asyncpg.Connection | None = None

    async def held(self) -> bool:
        """Whether this process leads, trying to become leader if nobody does."""
        if self._connection is not None and not self._connection.is_closed():
            return True
        self._connection = None
        try:
            connection = await self.tessera.db.dedicated_connection()
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            return False
        if await connection.fetchval("SELECT pg_try_advisory_lock($1)", LOCK_KEY):
            self._connection = connection
            return True
        await connection.close()
        return False

    async def release(self) -> None:
        if self._connection is not None and not self._connection.is_closed():
            with contextlib.suppress(Exception):
                await self._connection.close()
        self._connection = None
