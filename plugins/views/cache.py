"""Compiled views kept per process: no view-table query and no compilation per request.

An entry is one view's active version compiled against one catalog snapshot, with the
query strings parsed and the statements compiled for it since (both bounded). It is used
while the catalog cache hands out that same snapshot, so a schema change
(a rename rewrites stored definitions in the same transaction; a drop hides a field)
recompiles it on the next request, in every process, as the catalog cache learns of the
change. A change to the view itself (a new version, an activation, a deletion) is
announced on the bus channel :data:`CHANNEL` (``"<project id> <view name>"``); every
process, this one included, drops the entry. As a safety net for a message lost while the
bus reconnects, an entry older than ``revalidate_after`` seconds is read again (sooner when
an old field name the view resolves expires then), and a bus resync drops every entry.

Running a view, its meta and the project's OpenAPI document all read their compiled views
from here; the document lists the project's views and compiles only those whose kept
entry is missing, stale or of another id or version (:meth:`ViewCache.every_active`).
"""

from __future__ import annotations

import time
from collections.abc import Hashable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from kernel import (
    Conflict,
    KernelSurface,
    LruCache,
    Principal,
    ProjectCatalog,
    Readable,
    ValidationFailed,
)
from kernel.events.bus import RESYNC
from kernel.query import CompiledStatement, ListQuery, SortKey
from plugins.views.definition import CompiledView, Definition, compile_definition
from plugins.views.output import FieldOutput, output_of
from plugins.views.tables import list_active, read_active

CHANNEL = "views"
#: Where the plugin keeps the process's cache (``tessera.state``).
STATE_KEY = "views.core"
#: Query strings (minus cursor and parameters) kept parsed per view (:class:`PageQuery`).
MAX_QUERIES = 256
#: Statements kept compiled per view (by policy, filter shape, sort and cursor nulls).
MAX_STATEMENTS = 128

#: Accesses (:func:`access_key`) whose readable collections are kept per view.
MAX_READERS = 64

Shape = tuple[tuple[str, str], ...]
#: The base collection and the joined one (None: no join, or not readable at all).
Readers = tuple[Readable, Readable | None]


def access_key(principal: Principal) -> Hashable:
    """What ``records.readable`` reads of a principal: callers with equal keys are
    answered alike (see :attr:`ActiveView.readers`)."""
    return (principal.kind, principal.project_id, principal.scopes, principal.collections)


@dataclass(frozen=True, slots=True)
class PageQuery:
    """A query string's shape (minus cursor and parameters) as one view reads it."""

    query: ListQuery
    #: The page's sort: the caller's, else the view's own.
    sort: tuple[SortKey, ...]
    #: Each sort key's signature (part of a statement's cache key).
    sort_signature: tuple[str, ...]
    #: What the page's cursors are signed for: this view version and this sort.
    cursor_scope: str


@dataclass(slots=True)
class ActiveView:
    """One view's active version, compiled against the catalog snapshot ``catalog``."""

    #: The view's id; None for a definition that is not stored.
    id: int | None
    version: int
    catalog: ProjectCatalog
    view: CompiledView
    #: ``time.monotonic()`` past which the entry is read again: the safety-net
    #: revalidation, or sooner the expiry of an old field name the view resolves.
    stale_after: float
    #: How each projected field becomes JSON (:mod:`plugins.views.output`).
    output: tuple[FieldOutput, ...]
    #: The base and joined collections as callers of one :func:`access_key` may read them
    #: (``records.readable``; a joined ``None``: they may not read it at all). Kept per
    #: access, not per caller: what ``readable`` answers for this entry's catalog snapshot
    #: depends on the caller's kind, project, scopes and key collections alone (a row
    #: rule's ``@auth.*`` values are read from each request's context), and on the time
    #: only through aliases of the two collections, whose expiry makes the entry stale.
    readers: LruCache[Hashable, Readers] = field(default_factory=lambda: LruCache(MAX_READERS))
    queries: LruCache[Shape, PageQuery] = field(default_factory=lambda: LruCache(MAX_QUERIES))
    statements: LruCache[Hashable, CompiledStatement] = field(
        default_factory=lambda: LruCache(MAX_STATEMENTS)
    )


class ViewCache:
    """``(project id, view name)`` → :class:`ActiveView`, for at most ``limit`` views."""

    def __init__(self, tessera: KernelSurface, limit: int, revalidate_after: float = 30.0) -> None:
        self.tessera = tessera
        self.revalidate_after = revalidate_after
        self._entries: LruCache[tuple[str, str], ActiveView] = LruCache(limit)
        #: Raised by every announced change: a load that began before one is not kept.
        self._generation = 0

    async def active(self, project_id: str, name: str) -> tuple[ProjectCatalog, ActiveView]:
        """The project's catalog and the view compiled against it: from memory while
        both are current, else read and compiled (404 ``view_not_found``; 409
        ``view_outdated`` when the definition no longer fits the schema)."""
        catalog = await self.tessera.catalog.get(project_id)
        entry = self._current(project_id, name, catalog)
        if entry is not None:
            return catalog, entry
        return await self.load(project_id, name, catalog)

    async def every_active(self, catalog: ProjectCatalog) -> list[tuple[str, ActiveView]]:
        """Every view of ``catalog``'s project by name, compiled against ``catalog``: the
        kept entry while it is current and of the listed view's id and active version,
        else compiled from the listed definition and kept. One view-table query; a view
        that no longer fits the schema is left out."""
        project_id = catalog.project.id
        generation = self._generation
        rows = await list_active(self.tessera.db.engine, project_id)
        found = []
        for row in rows:
            entry = self._current(project_id, row.name, catalog)
            if entry is None or (entry.id, entry.version) != (row.id, row.active_version):
                definition = Definition.model_validate(row.definition)
                try:
                    entry = self.compile(catalog, definition, row.id, row.active_version)
                except ValidationFailed:
                    continue
                if generation == self._generation:
                    self._entries.put((project_id, row.name), entry)
            found.append((row.name, entry))
        return found

    def _current(self, project_id: str, name: str, catalog: ProjectCatalog) -> ActiveView | None:
        """The kept entry of view ``name`` if it was compiled against ``catalog`` and is
        not stale yet."""
        entry = self._entries.get((project_id, name))
        if entry is not None and entry.catalog is catalog and time.monotonic() < entry.stale_after:
            return entry
        return None

    async def load(
        self, project_id: str, name: str, catalog: ProjectCatalog | None = None
    ) -> tuple[ProjectCatalog, ActiveView]:
        """Read the view's active version and compile it. A definition that does not fit
        the catalog is tried once more on a freshly loaded one (a rename rewrites it with
        the schema change, which this process may not have heard of yet)."""
        generation = self._generation
        catalogs = self.tessera.catalog
        problems = ""
        for fresh in (False, True):
            if catalog is None or fresh:
                catalog = await catalogs.get(project_id, fresh=fresh)
            row = await read_active(self.tessera.db.engine, project_id, name)
            definition = Definition.model_validate(row.definition)
            try:
                entry = self.compile(catalog, definition, row.id, row.active_version)
            except ValidationFailed as error:
                problems = "; ".join(f"{item.field}: {item.message}" for item in error.items)
                continue
            if generation == self._generation:
                self._entries.put((project_id, name), entry)
            return catalog, entry
        raise Conflict(
            f"the view no longer fits the schema ({problems}); change its definition",
            code="view_outdated",
        )

    def compile(
        self,
        catalog: ProjectCatalog,
        definition: Definition,
        view_id: int | None = None,
        version: int = 0,
    ) -> ActiveView:
        """``definition`` compiled against ``catalog`` as view ``view_id`` at ``version``
        (none and 0: a definition that is not stored, such as a preview), kept nowhere;
        422 when it does not fit (projection fields that are gone are left out)."""
        now = datetime.now(UTC)
        view = compile_definition(definition, catalog, self.tessera.operators, now, lenient=True)
        stale_after = self._stale_after(catalog, view, now)
        return ActiveView(view_id, version, catalog, view, stale_after, output_of(view))

    def _stale_after(self, catalog: ProjectCatalog, view: CompiledView, now: datetime) -> float:
        """When an entry compiled at ``now`` must be read again (``time.monotonic()``):
        the safety net, or sooner when an old name of the two collections or of one of
        their fields expires."""
        collections = [view.base] if view.join is None else [view.base, view.join.target]
        expiries = [
            alias.expires_at
            for collection in collections
            for _, alias in collection.live_field_aliases(now).values()
        ]
        expiries += [
            alias.expires_at
            for collection in collections
            for alias in catalog.old_names(collection, now)
        ]
        seconds = min([self.revalidate_after, *((t - now).total_seconds() for t in expiries)])
        return time.monotonic() + seconds

    async def announce(self, project_id: str, name: str) -> None:
        """After committing a change to view ``name``: drop it here at once, and in every
        other process when the bus delivers the message."""
        self.forget(project_id, name)
        await self.tessera.bus.publish(CHANNEL, f"{project_id} {name}")

    def forget(self, project_id: str, name: str) -> None:
        self._generation += 1
        self._entries.pop((project_id, name))

    def on_bus_message(self, payload: str) -> None:
        """``"<project id> <view name>"`` from :data:`CHANNEL`; a resync drops every view."""
        if payload == RESYNC:
            self._generation += 1
            self._entries.clear()
            return
        project_id, _, name = payload.partition(" ")
        self.forget(project_id, name)

    def __len__(self) -> int:
        return len(self._entries)


def view_cache(tessera: KernelSurface) -> ViewCache:
    """The process's view cache (made by the plugin's ``startup``)."""
    cache: ViewCache = tessera.state[STATE_KEY]
    return cache
