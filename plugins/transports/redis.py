"""The plugin ``transports.redis``: an event bus on Redis pub/sub (``event_bus = "redis"``).

Chosen by default when ``redis_url`` is set. A reader task consumes the subscription and
reconnects with backoff after a failure, then tells listeners to resync.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import redis.asyncio as redis
from redis.exceptions import RedisError

from kernel import EventBus, KernelSurface, PluginError, PluginInfo, hookimpl, stop_tasks
from kernel.events.bus import RESYNC

log = logging.getLogger(__name__)

PREFIX = "tessera:"


class RedisBus(EventBus):
    name = "redis"

    def __init__(self, tessera: KernelSurface) -> None:
        super().__init__(tessera)
        url = tessera.settings.redis_url
        if not url:
            raise PluginError("event_bus = 'redis' needs redis_url to be set")
        self._client = redis.Redis.from_url(url, socket_connect_timeout=5)
        self._reader: asyncio.Task[None] | None = None
        self._connected = False

    async def start(self) -> None:
        pubsub = await self._subscribe()
        self._reader = asyncio.create_task(self._read(pubsub))

    async def _subscribe(self) -> Any:
        pubsub = self._client.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(*(PREFIX + channel for channel in self.channels))
        self._connected = True
        return pubsub

    async def _read(self, pubsub: Any) -> None:
        delay = 0.2
        while True:
            try:
                async for message in pubsub.listen():
                    if message.get("type") != "message":
                        continue
                    channel = message["channel"].decode().removeprefix(PREFIX)
                    await self.dispatch(channel, message["data"].decode())
                    delay = 0.2
            except (RedisError, OSError):
                self._connected = False
                log.warning("redis event bus disconnected; reconnecting")
            with contextlib.suppress(Exception):
                await pubsub.aclose()
            while True:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                try:
                    pubsub = await self._subscribe()
                    break
                except (RedisError, OSError):
                    continue
            for channel in self.channels:
                await self.dispatch(channel, RESYNC)

    async def stop(self) -> None:
        self._connected = False
        if self._reader is not None:
            await stop_tasks([self._reader], within=self.tessera.settings.shutdown_timeout_seconds)
        await self._client.aclose()

    async def publish(self, channel: str, payload: str) -> None:
        await self._client.publish(PREFIX + channel, payload)

    async def healthy(self) -> bool:
        if not self._connected:
            return False
        try:
            return bool(await asyncio.wait_for(self._client.ping(), 2))
        except (RedisError, OSError, TimeoutError):
            return False


@hookimpl
def plugin_info() -> PluginInfo:
    return PluginInfo(description="Event bus on Redis pub/sub (used when redis_url is set)")


@hookimpl
def register_event_buses() -> list[type[EventBus]]:
    return [RedisBus]
