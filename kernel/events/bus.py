"""The ``EventBus`` base class: wakes every Tessera process after a commit.

A bus carries short messages on named channels: ``catalog`` (a project's catalog version
changed), ``events`` (new outbox events were committed), ``keys`` (an API key was revoked),
``tokens`` (a deleted project's user tokens were revoked), ``admin-tokens`` (an admin was
deleted or their password changed).
Payloads stay small (under 4 KB); anything larger is read from PostgreSQL by id. A bus may
drop messages while reconnecting: every consumer recovers from PostgreSQL, so a lost
message delays work and never loses it.
"""

from __future__ import annotations

import inspect
import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from kernel.surface import KernelSurface

log = logging.getLogger(__name__)

#: Payload a bus delivers on every channel after it reconnects: messages may have been
#: lost, so listeners should drop caches or re-read state.
RESYNC = "*"

Listener = Callable[[str], Awaitable[None] | None]


class EventBus(ABC):
    """Base class of event buses; one is chosen per deployment by ``name``.

    The kernel builds it once as ``Bus(tessera)``, calls :meth:`subscribe` before
    :meth:`start`, and :meth:`stop` at shutdown. After losing its connection a bus
    reconnects by itself and then dispatches :data:`RESYNC` on every channel.
    """

    name: ClassVar[str]

    def __init__(self, tessera: KernelSurface) -> None:
        self.tessera = tessera
        self._listeners: dict[str, list[Listener]] = {}

    def subscribe(self, channel: str, listener: Listener) -> None:
        """Call ``listener(payload)`` for every message on ``channel``, from any process
        (this one included). A listener that raises is logged and does not stop others."""
        self._listeners.setdefault(channel, []).append(listener)

    def listeners(self, channel: str) -> list[Listener]:
        return self._listeners.get(channel, [])

    @property
    def channels(self) -> list[str]:
        return list(self._listeners)

    async def dispatch(self, channel: str, payload: str) -> None:
        """Hand one received message to the channel's listeners, isolating their failures.

        Implementations call this for every message they receive."""
        for listener in self.listeners(channel):
            try:
                result = listener(payload)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("event bus listener %r failed on channel %s", listener, channel)

    @abstractmethod
    async def start(self) -> None:
        """Connect and begin delivering messages to listeners."""

    @abstractmethod
    async def stop(self) -> None:
        """Stop delivering and release connections."""

    @abstractmethod
    async def publish(self, channel: str, payload: str) -> None:
        """Send ``payload`` to every process's listeners of ``channel``."""

    @abstractmethod
    async def healthy(self) -> bool:
        """Whether the bus is connected right now (for ``/readyz``)."""
