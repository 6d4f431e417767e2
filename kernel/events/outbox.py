"""Announce committed record writes on the bus, one message per burst.

The outbox rows themselves are written by the record statements; this only wakes the
consumers (realtime, webhooks, workflows) in every process. A burst of writes within
``delay`` seconds becomes one ``events`` message; consumers read what is new from
``tessera.events``, so nothing depends on how many messages arrive.
"""

from __future__ import annotations

import asyncio
import logging

from kernel.events.bus import EventBus

log = logging.getLogger(__name__)

CHANNEL = "events"


class EventNotifier:
    def __init__(self, bus: EventBus, delay: float = 0.01) -> None:
        self.bus = bus
        self.delay = delay
        self._scheduled: asyncio.Task[None] | None = None

    def committed(self) -> None:
        """A write committed; make sure a message goes out shortly."""
        if self._scheduled is None or self._scheduled.done():
            self._scheduled = asyncio.get_running_loop().create_task(self._publish())

    async def _publish(self) -> None:
        await asyncio.sleep(self.delay)
        try:
            await self.bus.publish(CHANNEL, "")
        except Exception:
            log.exception("could not announce new events; consumers will catch up by polling")

    async def close(self) -> None:
        if self._scheduled is not None and not self._scheduled.done():
            await self._scheduled
