"""Translate PostgreSQL errors into client errors (409, 422 ...), never a 500.

Works on asyncpg's exceptions directly (data plane) and on SQLAlchemy's wrappers of them
(control plane).
"""

from __future__ import annotations

import asyncpg

from kernel.catalog.names import TRANSIENT_PREFIX
from kernel.errors import Conflict, TesseraError, ValidationFailed


def postgres_error(error: BaseException) -> asyncpg.PostgresError | None:
    """The asyncpg error behind ``error`` (itself, or somewhere in its cause chain)."""
    seen: BaseException | None = error
    for _ in range(5):
        if seen is None:
            return None
        if isinstance(seen, asyncpg.PostgresError):
            return seen
        seen = getattr(seen, "orig", None) or seen.__cause__
    return None


def translate_postgres_error(
    error: BaseException, column_to_field: dict[str, str] | None = None
) -> TesseraError | None:
    """The client error for a database error, or ``None`` when it is not the client's doing.

    ``column_to_field`` maps SQL column names to field names so messages use the names
    the client knows.
    """
    pg = postgres_error(error)
    if pg is None:
        return None
    names = column_to_field or {}
    state = pg.sqlstate or ""
    column = getattr(pg, "column_name", None)
    field = names.get(column, column) if column else None
    detail = getattr(pg, "detail", None) or ""
    if state == "23505":
        return Conflict(
            f"a record with the same value already exists ({_unique_detail(detail, names)})",
            code="unique_violation",
            field=_unique_field(detail, names),
        )
    if state == "23503":
        return Conflict(
            "the change conflicts with a reference between records"
            + (f" ({detail})" if detail else ""),
            code="reference_violation",
        )
    if state == "23502":
        return ValidationFailed(f"{field or 'a field'} is required", code="required", field=field)
    if state == "23514":
        return ValidationFailed(_check_message(pg), code="check_failed")
    if state == "55P03":
        return Conflict(
            "the collection is busy (another transaction holds a lock on it); try again shortly",
            code="table_busy",
        )
    if state in {"42P07", "42701", "42710"}:
        return Conflict(f"{pg.message}", code="already_exists")
    if state == "40P01" or state == "40001":
        return Conflict("a concurrent change interfered; try again", code="retry")
    if state.startswith("22"):
        return ValidationFailed(
            f"a value is not valid: {pg.message}", code="invalid_value", field=field
        )
    return None


def _check_message(pg: asyncpg.PostgresError) -> str:
    """What a ``CHECK`` refusal says: the constraint's name (a rule's, such as
    ``rule_title_min_length``), or, for one a schema change is building on a large table
    (:func:`kernel.catalog.names.transient_name`), that the change is in progress."""
    constraint = getattr(pg, "constraint_name", None)
    if not constraint:
        return "a value breaks a constraint of the collection"
    if constraint.startswith(TRANSIENT_PREFIX):
        return (
            "a value breaks what a schema change in progress on this collection checks "
            f"({constraint}): write what the change expects, or try again once it is done"
        )
    return f"a value breaks a constraint of the collection ({constraint})"


def _unique_field(detail: str, names: dict[str, str]) -> str | None:
    # detail looks like: Key (email)=(a@b.c) already exists.
    if detail.startswith("Key (") and ")=" in detail:
        columns = detail[5 : detail.index(")=")]
        first = columns.split(",")[0].strip().strip('"')
        return names.get(first, first)
    return None


def _unique_detail(detail: str, names: dict[str, str]) -> str:
    if detail.startswith("Key (") and ")=" in detail:
        columns = [c.strip().strip('"') for c in detail[5 : detail.index(")=")].split(",")]
        return "unique: " + ", ".join(names.get(c, c) for c in columns)
    return "unique constraint"
