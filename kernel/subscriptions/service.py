"""``SubscriptionService`` (``tessera.subscriptions``): what realtime transports stream.

A transport authenticates the request, then::

    subscription = tessera.subscriptions.open(principal, project_id, collections=["orders"],
                                              cursor=request_cursor)
    async with subscription:             # checks access: Unauthorized/Forbidden/NotFound
        async for event in subscription:  # {"type", "collection", "id", ... "cursor"}
            await send(event)

Only events of that project and those collections reach the subscriber, each checked
against the principal's scope, key collections and row rules (access.py). Events come in
commit order: those after ``cursor`` from the outbox table first, then live ones, with no
gap and no duplicate (stream.py). One :class:`ProjectFeed` per project with subscribers in
this process reads the outbox when the event bus announces a commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from kernel.catalog.model import ProjectCatalog
from kernel.events.bus import EventBus
from kernel.events.outbox import CHANNEL
from kernel.events.reader import Position, head_position, read_events
from kernel.security.principal import Principal
from kernel.subscriptions.feed import BATCH, ProjectFeed
from kernel.subscriptions.stream import Entry, Subscription, SubscriptionClosed, payload
from kernel.tasks import stop_tasks

if TYPE_CHECKING:
    from kernel.runtime import Tessera


class SubscriptionService:
    def __init__(self, tessera: Tessera) -> None:
        self.tessera = tessera
        self._feeds: dict[str, ProjectFeed] = {}

    def listen(self, bus: EventBus) -> None:
        """Wake the feeds on every ``events`` message (and on a bus resync)."""
        bus.subscribe(CHANNEL, self._wake)

    def open(
        self,
        principal: Principal,
        project_id: str,
        *,
        collections: Sequence[str],
        cursor: str | None = None,
    ) -> Subscription:
        """A subscription to ``collections`` of ``project_id`` for ``principal``, resuming
        after ``cursor`` (an event's ``cursor``; none: from now). No I/O yet: access is
        checked by ``start()`` / ``async with``. A malformed cursor is ``BadRequest``."""
        return Subscription(
            self,
            principal,
            project_id,
            collections,
            Position.decode(cursor) if cursor else None,
            self.tessera.settings.realtime_queue_size,
        )

    async def stop(self) -> None:
        """Close every subscription (``shutting_down``) and stop the feeds."""
        feeds = list(self._feeds.values())
        for feed in feeds:
            for subscription in list(feed.subscriptions):
                subscription.close(
                    SubscriptionClosed("the server is stopping", code="shutting_down")
                )
        await stop_tasks(
            [feed.task for feed in feeds],
            within=self.tessera.settings.shutdown_timeout_seconds,
        )

    @property
    def subscriber_count(self) -> int:
        """Open subscriptions in this process."""
        return sum(len(feed.subscriptions) for feed in self._feeds.values())

    # -- used by Subscription -----------------------------------------------------------

    async def catalog(self, project_id: str) -> ProjectCatalog:
        catalogs = self.tessera.catalog
        return catalogs.cached(project_id) or await catalogs.get(project_id)

    async def join(self, subscription: Subscription) -> Position:
        """Add ``subscription`` to its project's feed; returns the feed's position (every
        later event will be offered to the subscription)."""
        project_id = subscription.project_id
        feed = self._feeds.get(project_id)
        if feed is None:
            async with self.tessera.db.pool.acquire() as conn:
                start = await head_position(conn)
            feed = self._feeds.get(project_id)  # another subscriber may have started it
            if feed is None:
                feed = self._feeds[project_id] = ProjectFeed(self, project_id, start)
        feed.subscriptions.add(subscription)
        return feed.position

    def leave(self, subscription: Subscription) -> None:
        """Remove ``subscription``; a feed without subscribers stops."""
        feed = self._feeds.get(subscription.project_id)
        if feed is None:
            return
        feed.subscriptions.discard(subscription)
        if not feed.subscriptions:
            del self._feeds[subscription.project_id]
            feed.task.cancel()

    async def backlog(
        self, subscription: Subscription, after: Position
    ) -> tuple[Position | None, list[Entry]]:
        """The next batch of the project's events after ``after``: the position read up
        to (None: nothing new) and the entries the subscription may see."""
        async with self.tessera.db.pool.acquire() as conn:
            events = await read_events(conn, after, project_id=subscription.project_id, limit=BATCH)
        if not events:
            return None, []
        now = datetime.now(UTC)
        entries = []
        for event in events:
            grant = subscription.grants.get(event.collection_id)
            if grant is not None and grant.sees(event, now):
                entries.append((event.position, payload(event, grant)))
        return events[-1].position, entries

    def _wake(self, _payload: str) -> None:
        for feed in self._feeds.values():
            feed.wake.set()
