"""The ``QuotaPolicy`` base class: metering usage and enforcing limits."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from kernel.surface import KernelSurface


class QuotaPolicy:
    """Base class of quota policies; every registered policy is consulted.

    The kernel builds each once as ``Policy(tessera)``. Every ``check_*`` method either
    returns (allowed) or raises :class:`kernel.errors.QuotaExceeded` with the headers the
    client should see. The defaults allow everything, so a policy overrides only the checks
    it cares about. Checks run on the request path: keep them to counters in memory or
    Redis, never a slow query.
    """

    name: ClassVar[str]

    def __init__(self, tessera: KernelSurface) -> None:
        self.tessera = tessera

    async def check_request(self, project_id: str, principal: Any) -> dict[str, str]:
        """Before any project request; returns headers to add (``X-RateLimit-*``)."""
        return {}

    async def check_write(self, project_id: str, collection: str, action: str) -> None:
        """Before a record write (``action`` is ``create``, ``update`` or ``delete``)."""

    async def check_ddl(self, project_id: str, op: str, args: dict[str, Any]) -> None:
        """Before a schema operation is applied."""

    async def check_upload(self, project_id: str, size: int) -> None:
        """Before a file upload of ``size`` bytes is accepted."""
