"""The in-process catalog cache: no catalog query on the request path.

Snapshots are keyed by project and replaced when the project's catalog version moves. A
schema change bumps the version in its own transaction and announces it on the event bus;
every process drops its stale snapshot on that message. As a safety net for a message lost
during a bus reconnect, a snapshot older than ``revalidate_after`` seconds is checked
against the database's version (one indexed single-row query, at most that often).

At most ``max_projects`` snapshots are held (the ``catalog_cache_size`` setting); past
that, the least recently used project's snapshot is dropped and reloaded on its next
request.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from kernel.catalog.loader import load_catalog
from kernel.catalog.model import ProjectCatalog
from kernel.db.engine import Database
from kernel.errors import NotFound
from kernel.events.bus import RESYNC
from kernel.fields import FieldType
from kernel.lru import LruCache
from kernel.registry import Registry

CHANNEL = "catalog"


@dataclass(slots=True)
class _Loading:
    """One load at a time for a project, and how many callers are waiting or loading."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    callers: int = 0


class CatalogCache:
    """Project id → newest known :class:`ProjectCatalog`, for at most ``max_projects``
    projects."""

    def __init__(
        self,
        db: Database,
        field_types: Registry[FieldType],
        revalidate_after: float = 30.0,
        max_projects: int = 1000,
    ) -> None:
        self.db = db
        self.field_types = field_types
        self.revalidate_after = revalidate_after
        self._entries: LruCache[str, tuple[ProjectCatalog, float]] = LruCache(max_projects)
        #: Projects being loaded right now (dropped when their last caller is done).
        self._loading: dict[str, _Loading] = {}
        #: The lowest version worth keeping per project, raised by each announced change:
        #: a load that began before the change committed must not be kept after it.
        self._floors: LruCache[str, int] = LruCache(max_projects)

    def cached(self, project_id: str) -> ProjectCatalog | None:
        """The project's snapshot when one is held and needs no revalidation (no I/O);
        None otherwise (then :meth:`get`)."""
        entry = self._entries.get(project_id)
        if entry is not None and time.monotonic() - entry[1] < self.revalidate_after:
            return entry[0]
        return None

    async def get(self, project_id: str, *, fresh: bool = False) -> ProjectCatalog:
        """The project's catalog; raises :class:`NotFound` for an unknown project.

        ``fresh`` confirms the snapshot against the database's version first (one indexed
        single-row query), for control-plane reads that must show a change another process
        committed a moment ago, before its bus message arrives. Never on the records path.
        """
        entry = self._entries.get(project_id)
        if entry is not None:
            catalog, loaded_at = entry
            if not fresh and time.monotonic() - loaded_at < self.revalidate_after:
                return catalog
            if await self._current_version(project_id) == catalog.version:
                self._entries.put(project_id, (catalog, time.monotonic()))
                return catalog
        return await self.refresh(project_id)

    async def refresh(self, project_id: str) -> ProjectCatalog:
        """Reload the project's catalog now (one load at a time per project)."""
        loading = self._loading.setdefault(project_id, _Loading())
        loading.callers += 1
        try:
            async with loading.lock:
                return await self._load(project_id)
        finally:
            loading.callers -= 1
            if not loading.callers:
                del self._loading[project_id]

    async def _load(self, project_id: str) -> ProjectCatalog:
        async with self.db.engine.connect() as conn:
            catalog = await load_catalog(conn, project_id, self.field_types)
        if catalog is None:
            self._entries.pop(project_id)
            raise NotFound(f"project {project_id!r} not found", code="project_not_found")
        current = self._entries.get(project_id)
        if current is not None and current[0].version > catalog.version:
            return current[0]
        floor = self._floors.get(project_id)
        if floor is not None and catalog.version < floor:
            return catalog  # read before a change we were told of: serve it, keep nothing
        self._entries.put(project_id, (catalog, time.monotonic()))
        return catalog

    def invalidate(self, project_id: str, version: int | None = None) -> None:
        """Forget the project's snapshot if it is older than ``version`` (or always), and
        keep no snapshot older than ``version`` from a load still under way."""
        if version is not None and version > (self._floors.get(project_id) or 0):
            self._floors.put(project_id, version)
        entry = self._entries.get(project_id)
        if entry is not None and (version is None or entry[0].version < version):
            self._entries.pop(project_id)

    def on_bus_message(self, payload: str) -> None:
        """Handle ``"<project_id> <version>"`` from the ``catalog`` channel (-1: always);
        a bus resync (messages may have been lost) drops every snapshot."""
        if payload == RESYNC:
            self._entries.clear()
            return
        project_id, _, raw_version = payload.partition(" ")
        version = int(raw_version) if raw_version.lstrip("-").isdigit() else -1
        self.invalidate(project_id, None if version < 0 else version)

    @staticmethod
    def message(project_id: str, version: int | None) -> str:
        return f"{project_id} {-1 if version is None else version}"

    async def _current_version(self, project_id: str) -> int | None:
        async with self.db.pool.acquire() as conn:
            return await conn.fetchval(
                "SELECT catalog_version FROM tessera.projects WHERE id = $1", project_id
            )
