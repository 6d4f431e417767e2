"""The ``Transport`` base class: a way to stream subscriptions to clients (SSE, WebSocket)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar

from fastapi import APIRouter

if TYPE_CHECKING:
    from kernel.surface import KernelSurface


class Transport(ABC):
    """Base class of realtime transports.

    ``name`` is unique across plugins. The kernel builds each enabled transport once as
    ``Transport(tessera)`` and includes the router it returns; the transport's endpoints
    authenticate through the kernel's principal resolution and stream what the kernel's
    subscription service (``tessera.subscriptions``, docs/plugins.md) yields, which
    already applies row rules and key scopes. ``kernel.testing.transport.TransportContract``
    is the test suite a transport passes.
    """

    name: ClassVar[str]

    def __init__(self, tessera: KernelSurface) -> None:
        self.tessera = tessera

    @abstractmethod
    def router(self) -> APIRouter:
        """The routes this transport serves (under ``/api/projects/{project_id}/realtime``)."""
