"""The ``StorageBackend`` base class: where file bytes live (local disk, S3, MinIO ...)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from kernel.surface import KernelSurface


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """A request a client makes directly against the backend (a signed PUT or GET)."""

    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    expires_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """What the backend knows of a stored object."""

    key: str
    size: int
    content_type: str | None = None
    checksum_sha256: str | None = None


class StorageBackend(ABC):
    """Base class of storage backends; one is chosen per deployment by ``name``.

    The kernel builds the chosen backend once at startup as ``Backend(tessera)``; it reads
    its settings from ``tessera.plugins.config(<its plugin name>)``. Keys are opaque,
    project-scoped paths the kernel chooses; a backend never interprets them.
    """

    name: ClassVar[str]

    def __init__(self, tessera: KernelSurface) -> None:
        self.tessera = tessera

    @abstractmethod
    async def upload_url(
        self, key: str, *, content_type: str, size: int, expires_in: int
    ) -> SignedRequest:
        """A signed request that stores exactly ``size`` bytes of ``content_type`` at ``key``."""

    @abstractmethod
    async def download_url(self, key: str, *, expires_in: int, filename: str) -> SignedRequest:
        """A signed GET for ``key``, served as an attachment named ``filename``."""

    @abstractmethod
    async def head(self, key: str) -> ObjectInfo | None:
        """The object's size and type, or ``None`` when nothing is stored at ``key``."""

    @abstractmethod
    def open(self, key: str) -> AsyncIterator[bytes]:
        """The object's bytes in chunks; raises ``FileNotFoundError`` when absent."""

    @abstractmethod
    async def put(self, key: str, chunks: AsyncIterator[bytes], *, content_type: str) -> ObjectInfo:
        """Store the chunks at ``key`` (replacing what was there) and describe the result."""

    @abstractmethod
    async def delete(self, key: str) -> None:
        """Remove ``key``; deleting a missing key is not an error."""
