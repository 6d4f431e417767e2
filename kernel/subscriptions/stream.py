"""``Subscription``: one subscriber's stream — a replay from its cursor, then live events,
with no gap and no duplicate, through a bounded queue."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

from kernel.catalog.model import ProjectCatalog
from kernel.errors import TesseraError
from kernel.events.reader import Event, Position
from kernel.security.principal import Principal
from kernel.subscriptions.access import Grant, resolve_grants

if TYPE_CHECKING:
    from kernel.subscriptions.service import SubscriptionService

#: One event as a subscriber receives it: its place in the outbox and its payload.
Entry = tuple[Position, dict[str, Any]]


class SubscriptionClosed(TesseraError):
    """The service ended a subscription; the code says why.

    ``slow_subscriber``: more than ``realtime_queue_size`` events waited for the reader.
    ``access_changed``: a policy, the collection or the project changed so that the
    subscriber may no longer watch. ``shutting_down``: the process is stopping.
    ``closed``: the subscription's own :meth:`Subscription.close`. A client reconnects
    with the cursor of the last event it received and misses nothing (access permitting).
    """

    status = 503
    default_code = "subscription_closed"


def payload(event: Event, grant: Grant) -> dict[str, Any]:
    """The event as the subscriber sees it (API.md, Realtime), named as they named it."""
    return {**event.public(), "collection": grant.name}


class Subscription:
    """Events of some collections of one project, as one principal may see them.

    Made by :meth:`SubscriptionService.open`; :meth:`start` checks access (raising the
    kernel's ``Unauthorized``, ``Forbidden``, ``NotFound`` or ``BadRequest``) and joins the
    live feed; iterating yields payloads (API.md, Realtime) in commit order: first the
    events after the cursor, then live ones. Iteration raises :class:`SubscriptionClosed`
    when the service ends the subscription; :meth:`close` leaves. ``async with`` does both.

    Live events wait in a queue of at most ``limit``; a reader that falls further behind
    is closed (``slow_subscriber``) rather than letting memory grow: it reconnects with
    its last cursor and catches up from the outbox table.
    """

    def __init__(
        self,
        service: SubscriptionService,
        principal: Principal,
        project_id: str,
        names: Sequence[str],
        cursor: Position | None,
        limit: int,
    ) -> None:
        self.service = service
        self.principal = principal
        self.project_id = project_id
        self.names = tuple(names)
        self.cursor = cursor
        self.limit = limit
        self.grants: dict[int, Grant] = {}
        self.catalog_version: int | None = None
        #: The last event handed out (events at or before it are duplicates).
        self.last = Position()
        self._read_from = Position()
        #: Without a cursor the subscription starts where the feed is: nothing to replay.
        self._replaying = cursor is not None
        self._missed = False
        self._backlog: deque[Entry] = deque()
        self._queue: deque[Entry] = deque()
        self._wake = asyncio.Event()
        self._closed: SubscriptionClosed | None = None
        self._joined = False

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> Subscription:
        """Check access and join the project's live feed (before replaying, so nothing
        committed in between is missed)."""
        self._grant(await self.service.catalog(self.project_id))
        joined_at = await self.service.join(self)
        self._joined = True
        start = self.cursor if self.cursor is not None else joined_at
        self.last = self._read_from = start
        return self

    def close(self, reason: SubscriptionClosed | None = None) -> None:
        """Leave the feed; with a ``reason``, iteration raises it. Idempotent."""
        if self._closed is None:
            self._closed = reason or SubscriptionClosed("closed", code="closed")
        self._wake.set()
        if self._joined:
            self._joined = False
            self.service.leave(self)

    async def __aenter__(self) -> Subscription:
        return await self.start()

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- fed by the service -------------------------------------------------------------

    def follow(self, catalog: ProjectCatalog) -> None:
        """Resolve access again if the catalog moved on; close when it is gone."""
        if catalog.version == self.catalog_version:
            return
        try:
            self._grant(catalog)
        except TesseraError as error:
            self.close(SubscriptionClosed(f"access changed: {error}", code="access_changed"))

    def _grant(self, catalog: ProjectCatalog) -> None:
        self.grants = resolve_grants(
            self.service.tessera.records, catalog, self.principal, self.names
        )
        self.catalog_version = catalog.version

    def offer(self, position: Position, entry: dict[str, Any]) -> None:
        """A live event this subscriber may see. While replaying, it is dropped and the
        replay reads once more (the event is in the table); a full queue closes."""
        if self._closed is not None:
            return
        if self._replaying:
            self._missed = True
            return
        if len(self._queue) >= self.limit:
            self.close(
                SubscriptionClosed(
                    f"more than {self.limit} events waited for this subscriber; reconnect "
                    "with the last cursor received to catch up",
                    code="slow_subscriber",
                )
            )
            return
        self._queue.append((position, entry))
        self._wake.set()

    # -- read by the subscriber ---------------------------------------------------------

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> dict[str, Any]:
        while True:
            position, entry = await self._next_entry()
            if position > self.last:
                self.last = position
                return entry

    async def _next_entry(self) -> Entry:
        while True:
            if self._closed is not None:
                raise self._closed
            if self._backlog:
                return self._backlog.popleft()
            if self._replaying:
                await self._catch_up()
                continue
            if self._queue:
                return self._queue.popleft()
            self._wake.clear()
            await self._wake.wait()

    async def _catch_up(self) -> None:
        """Read the next batch after the cursor; replay ends with a read that finds
        nothing new while no live event was dropped (every dropped event was already
        final, so that read would have found it)."""
        self._missed = False
        read_to, entries = await self.service.backlog(self, self._read_from)
        if read_to is None:
            self._replaying = self._missed
            return
        self._read_from = read_to
        self._backlog.extend(entries)
