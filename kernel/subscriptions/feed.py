"""``ProjectFeed``: reads one project's new outbox events and fans them out to the
project's subscribers in this process.

One feed runs while a project has subscribers here. It reads after its position when the
event bus says events were committed, and every ``poll_interval`` seconds in case a bus
message was lost or an event was held back by a long transaction (reader.py). For each
event it evaluates each group's row rule once (``Grant.group``), not once per subscriber.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Hashable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from kernel.errors import NotFound
from kernel.events.reader import Event, Position, read_events
from kernel.subscriptions.stream import Subscription, SubscriptionClosed, payload

if TYPE_CHECKING:
    from kernel.subscriptions.service import SubscriptionService

log = logging.getLogger(__name__)

BATCH = 500


class ProjectFeed:
    def __init__(self, service: SubscriptionService, project_id: str, position: Position) -> None:
        self.service = service
        self.project_id = project_id
        #: Every event after it is yet to be offered to the subscribers.
        self.position = position
        self.subscriptions: set[Subscription] = set()
        self.wake = asyncio.Event()
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        interval = self.service.tessera.settings.realtime_poll_interval
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), interval)
            self.wake.clear()
            try:
                while await self.pass_once() == BATCH:
                    pass
            except Exception:
                log.exception("realtime feed of project %s failed; retrying", self.project_id)

    async def pass_once(self) -> int:
        """Offer the next batch of events; returns how many were read."""
        async with self.service.tessera.db.pool.acquire() as conn:
            events = await read_events(conn, self.position, project_id=self.project_id, limit=BATCH)
        if not events:
            return 0
        try:
            catalog = await self.service.catalog(self.project_id)
        except NotFound:
            for subscription in list(self.subscriptions):
                subscription.close(
                    SubscriptionClosed("the project was deleted", code="access_changed")
                )
            return 0
        for subscription in list(self.subscriptions):
            subscription.follow(catalog)
        for event in events:
            self._fan_out(event)
        self.position = events[-1].position
        return len(events)

    def _fan_out(self, event: Event) -> None:
        now = datetime.now(UTC)
        decisions: dict[Hashable, bool] = {}
        for subscription in list(self.subscriptions):
            grant = subscription.grants.get(event.collection_id)
            if grant is None:
                continue
            allowed = decisions.get(grant.group)
            if allowed is None:
                allowed = decisions[grant.group] = grant.sees(event, now)
            if allowed:
                subscription.offer(event.position, payload(event, grant))
