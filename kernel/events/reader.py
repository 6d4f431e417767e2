"""Reading the outbox in commit order, with no gap and no duplicate.

Event ids come from a sequence when a row is inserted, but transactions commit in another
order, so "everything after id N" would skip an event whose transaction commits late.
Each event therefore carries its transaction id (``xid8``); readers order by
``(xact_id, id)`` and only read events of transactions older than the oldest one still
running (``pg_snapshot_xmin``). Everything below that horizon is final, so a position
``(xact_id, id)`` is a cursor that never misses an event. The price: a long-running
transaction anywhere in the database delays (never loses) events.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from kernel.catalog.model import CollectionDef
from kernel.errors import BadRequest
from kernel.fields import FieldValueError
from kernel.numbers import INT64_MAX

#: ``<xact_id>.<id>``, both PostgreSQL bigints written in ASCII digits.
_POSITION_TEXT = re.compile(r"([0-9]{1,19})\.([0-9]{1,19})")


@dataclass(frozen=True, order=True, slots=True)
class Position:
    """A place in the outbox: after every event at or before ``(xact_id, id)``."""

    xact_id: int = 0
    id: int = 0

    def encode(self) -> str:
        return f"{self.xact_id}.{self.id}"

    @classmethod
    def decode(cls, text: str) -> Position:
        """Parse a cursor made by :meth:`encode`; 400 naming ``cursor`` otherwise."""
        match = _POSITION_TEXT.fullmatch(text)
        if match is None or max(int(match[1]), int(match[2])) > INT64_MAX:
            raise BadRequest("cursor is not valid", code="invalid_cursor", field="cursor")
        return cls(int(match[1]), int(match[2]))


@dataclass(frozen=True, slots=True)
class Event:
    """One committed record write."""

    id: int
    xact_id: int
    project_id: str
    collection_id: int
    collection: str
    record_id: int
    type: str
    changed_fields: list[str]
    row: dict[str, Any] | None
    meta: dict[str, Any]
    created_at: datetime

    @property
    def position(self) -> Position:
        return Position(self.xact_id, self.id)

    def stored_row(self, collection: CollectionDef) -> dict[str, Any]:
        """The row image with values as the columns store them (dates as dates), which is
        what :func:`kernel.expr.evaluate` compares: rules and conditions evaluated on an
        event agree with the same rule in SQL. A value the field no longer accepts (its
        type changed since the write) reads as ``None``; no image gives ``{}``."""
        if not self.row:
            return {}
        row = dict(self.row)
        for field in collection.live_fields.values():
            value = row.get(field.column)
            if value is not None:
                try:
                    row[field.column] = field.type.coerce(value)
                except FieldValueError:
                    row[field.column] = None
        for system in ("created_at", "updated_at"):
            if isinstance(row.get(system), str):
                row[system] = datetime.fromisoformat(row[system])
        return row

    def public(self) -> dict[str, Any]:
        """The event as clients see it (API.md, Realtime)."""
        return {
            "type": self.type,
            "collection": self.collection,
            "id": self.record_id,
            "changed_fields": self.changed_fields,
            "ts": self.created_at.isoformat(),
            "cursor": self.position.encode(),
        }


_COLUMNS = (
    "id, xact_id::text::bigint AS xact, project_id, collection_id, collection, record_id, "
    "type, changed_fields, row, meta, created_at"
)


def _event(row: asyncpg.Record) -> Event:
    return Event(
        id=row["id"],
        xact_id=row["xact"],
        project_id=row["project_id"],
        collection_id=row["collection_id"],
        collection=row["collection"],
        record_id=row["record_id"],
        type=row["type"],
        changed_fields=list(row["changed_fields"]),
        row=row["row"],
        meta=row["meta"] or {},
        created_at=row["created_at"],
    )


async def read_events(
    conn: asyncpg.Connection,
    after: Position,
    *,
    project_id: str | None = None,
    limit: int = 500,
    through: Position | None = None,
) -> list[Event]:
    """Up to ``limit`` final events after ``after``, oldest first (one project, or all).

    ``through`` stops the read at that position, included: with a position
    :func:`read_event_heads` returned, it reads exactly the events those heads stand for."""
    clauses, arguments = _bounds(after, limit, through=through)
    if project_id is not None:
        arguments.append(project_id)
        clauses.append(f"project_id = ${len(arguments)}")
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM tessera.events WHERE {' AND '.join(clauses)}"
        " ORDER BY xact_id, id LIMIT $3",
        *arguments,
    )
    return [_event(row) for row in rows]


@dataclass(frozen=True, slots=True)
class EventHead:
    """Where an event is and whose it is, without its payload."""

    position: Position
    project_id: str


async def read_event_heads(
    conn: asyncpg.Connection, after: Position, *, limit: int = 500, final_below: int | None = None
) -> list[EventHead]:
    """The positions and projects of the events :func:`read_events` would return (all
    projects), without reading or decoding their payloads: a reader that skips most
    events reads the batch in full with :func:`read_events` ``(through=...)`` when it must.

    ``final_below`` is a transaction id horizon the caller read earlier in the same
    transaction as ``pg_snapshot_xmin(pg_current_snapshot())`` (never anything else:
    events of transactions at or above a snapshot's xmin may still commit). Only events
    below it are read, so everything committed before them was visible to that earlier
    statement too. Without it, this statement's own horizon applies."""
    clauses, arguments = _bounds(after, limit, final_below=final_below)
    rows = await conn.fetch(
        "SELECT xact_id::text::bigint AS xact, id, project_id FROM tessera.events"
        f" WHERE {' AND '.join(clauses)} ORDER BY xact_id, id LIMIT $3",
        *arguments,
    )
    return [EventHead(Position(row["xact"], row["id"]), row["project_id"]) for row in rows]


def _bounds(
    after: Position,
    limit: int,
    *,
    through: Position | None = None,
    final_below: int | None = None,
) -> tuple[list[str], list[Any]]:
    """The conditions (and their arguments ``$1``..) of a read after ``after``: final
    events only (below ``final_below``, else this statement's horizon), up to ``through``
    when given. ``$3`` is always ``limit``."""
    clauses = ["(xact_id, id) > ($1::text::xid8, $2::bigint)"]
    arguments: list[Any] = [str(after.xact_id), after.id, limit]
    if final_below is None:
        clauses.append("xact_id < pg_snapshot_xmin(pg_current_snapshot())")
    else:
        arguments.append(str(final_below))
        clauses.append(f"xact_id < ${len(arguments)}::text::xid8")
    if through is not None:
        arguments += [str(through.xact_id), through.id]
        clauses.append(
            f"(xact_id, id) <= (${len(arguments) - 1}::text::xid8, ${len(arguments)}::bigint)"
        )
    return clauses, arguments


async def head_position(conn: asyncpg.Connection) -> Position:
    """The position after every event that is final now (where a new reader starts)."""
    row = await conn.fetchrow(
        "SELECT xact_id::text::bigint AS xact, id FROM tessera.events "
        "WHERE xact_id < pg_snapshot_xmin(pg_current_snapshot()) "
        "ORDER BY xact_id DESC, id DESC LIMIT 1"
    )
    return Position(row["xact"], row["id"]) if row else Position()
