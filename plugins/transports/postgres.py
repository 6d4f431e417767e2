"""The plugin ``transports.postgres``: the default event bus, on LISTEN/NOTIFY.

LISTEN needs a connection of its own, outside the pool: this bus keeps one, reconnects it
with backoff when it drops, and then tells listeners to resync (a NOTIFY sent while it
was away is lost; consumers recover from PostgreSQL). Publishing is ``pg_notify`` through
the pool, so it is delivered at commit like any NOTIFY.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import asyncpg

from kernel import EventBus, KernelSurface, PluginInfo, hookimpl, stop_tasks
from kernel.events.bus import RESYNC

log = logging.getLogger(__name__)

PREFIX = "tessera_"


class PostgresBus(EventBus):
    name = "postgres"

    def __init__(self, tessera: KernelSurface) -> None:
        super().__init__(tessera)
        self._connection: asyncpg.Connection | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._lost = asyncio.Event()

    async def start(self) -> None:
        await self._connect()
        self._supervisor = asyncio.create_task(self._supervise())

    async def _connect(self) -> None:
        connection = await self.tessera.db.dedicated_connection()
        for channel in self.channels:
            await connection.add_listener(PREFIX + channel, self._on_notify)
        connection.add_termination_listener(lambda _: self._lost.set())
        self._connection = connection
        self._lost.clear()

    def _on_notify(self, connection: Any, pid: int, channel: str, payload: str) -> None:
        asyncio.get_running_loop().create_task(self.dispatch(channel.removeprefix(PREFIX), payload))

    async def _supervise(self) -> None:
        delay = 0.2
        while True:
            await self._lost.wait()
            log.warning("event bus connection lost; reconnecting")
            while True:
                try:
                    await self._connect()
                    break
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)
            delay = 0.2
            for channel in self.channels:
                await self.dispatch(channel, RESYNC)

    async def stop(self) -> None:
        if self._supervisor is not None:
            await stop_tasks(
                [self._supervisor], within=self.tessera.settings.shutdown_timeout_seconds
            )
        if self._connection is not None and not self._connection.is_closed():
            await self._connection.close()

    async def publish(self, channel: str, payload: str) -> None:
        async with self.tessera.db.pool.acquire() as conn:
            await conn.execute("SELECT pg_notify($1, $2)", PREFIX + channel, payload)

    async def healthy(self) -> bool:
        return self._connection is not None and not self._connection.is_closed()


@hookimpl
def plugin_info() -> PluginInfo:
    return PluginInfo(description="Event bus on PostgreSQL LISTEN/NOTIFY (the default)")


@hookimpl
def register_event_buses() -> list[type[EventBus]]:
    return [PostgresBus]
