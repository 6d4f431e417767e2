"""The ``StorageBackend`` base class: where file bytes live (local disk, S3, MinIO ...).

The deployment picks one registered backend with the ``storage_backend`` setting; the
kernel builds it once at start as ``tessera.storage``. Keys follow one grammar
(:func:`check_key`) so that every backend can store every key the kernel chooses.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from kernel.surface import KernelSurface

#: One key segment: starts with a letter or digit, then letters, digits, ``.``, ``_``, ``-``.
_SEGMENT = r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}"
_KEY = re.compile(rf"{_SEGMENT}(?:/{_SEGMENT}){{0,15}}")
MAX_KEY_LENGTH = 512


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """A request a client makes directly against the backend (a signed PUT or GET).

    ``url`` is absolute, or relative to the API's base URL when the backend serves the
    request itself (``/api/storage/...``); ``headers`` are the ones the client must send.
    """

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


def check_key(key: str) -> str:
    """``key`` if it is a valid object key, else :class:`ValueError`.

    A key is up to 16 ``/``-separated segments of letters, digits, ``.``, ``_`` and ``-``,
    each starting with a letter or digit (so no ``..``, no absolute path, no empty
    segment), at most :data:`MAX_KEY_LENGTH` characters. Backends call it on every key
    they receive, so a key can never name a place outside the backend's store.
    """
    if not isinstance(key, str) or len(key) > MAX_KEY_LENGTH or not _KEY.fullmatch(key):
        raise ValueError(f"invalid storage key {key!r}")
    return key


async def check_upload_quota(tessera: KernelSurface, project_id: str, size: int) -> None:
    """Ask every quota policy whether ``project_id`` may store ``size`` more bytes.

    Raises :class:`kernel.errors.QuotaExceeded` from the first policy that refuses.
    """
    for policy in tessera.quota_policies:
        await policy.check_upload(project_id, size)


class StorageBackend(ABC):
    """Base class of storage backends; one is chosen per deployment by ``name``.

    The kernel builds the chosen backend once at startup as ``Backend(tessera)``; it reads
    its settings from ``tessera.plugins.config(<its plugin name>)``. Keys are opaque,
    project-scoped paths the kernel chooses (see :func:`check_key`); a backend never
    interprets them, and raises :class:`ValueError` for a key that breaks the grammar.

    ``kernel.testing.StorageBackendContract`` checks an implementation against this
    contract.
    """

    name: ClassVar[str]

    def __init__(self, tessera: KernelSurface) -> None:
        self.tessera = tessera

    @abstractmethod
    async def upload_url(
        self, key: str, *, project_id: str, content_type: str, size: int, expires_in: int
    ) -> SignedRequest:
        """A signed request that stores exactly ``size`` bytes of ``content_type`` at ``key``.

        The bytes count against ``project_id``: before accepting them, the backend calls
        :func:`check_upload_quota` — in its own endpoint when it receives the bytes, or here when
        they go elsewhere (S3). A body of another size or type is refused (4xx).
        """

    @abstractmethod
    async def download_url(self, key: str, *, expires_in: int, filename: str) -> SignedRequest:
        """A signed GET for ``key``, served as an attachment named ``filename``."""

    @abstractmethod
    async def head(self, key: str) -> ObjectInfo | None:
        """The object's size and type, or ``None`` when nothing is stored at ``key``."""

    @abstractmethod
    def open(self, key: str) -> AsyncIterator[bytes]:
        """The object's bytes in chunks; iterating raises ``FileNotFoundError`` when absent."""

    @abstractmethod
    async def put(self, key: str, chunks: AsyncIterator[bytes], *, content_type: str) -> ObjectInfo:
        """Store the chunks at ``key`` (replacing what was there) and describe the result.

        If ``chunks`` raises, nothing is stored and what was there stays.
        """

    @abstractmethod
    async def delete(self, key: str) -> None:
        """Remove ``key``; deleting a missing key is not an error."""
