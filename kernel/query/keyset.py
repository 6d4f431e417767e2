"""Keyset pagination: the cursor after a page's last row, and the ``WHERE`` that continues
after it, nulls included.

A cursor holds the values of the last row's sort keys, signed and bound to a scope by
the deployment's :class:`~kernel.records.cursor.CursorCodec` (``tessera.cursors``):
:func:`encode_cursor` makes it from the row, :func:`decode_cursor` turns it back into the
context values ``k0``, ``k1`` ... that :func:`after_cursor` reads. Records and views both
page this way, so a cursor's bytes mean the same everywhere.

PostgreSQL sorts nulls last ascending and first descending. For sort keys k1..kn (the last
always ``id``), the rows after a cursor c are those where, for some i, k1..k(i-1) equal
c's values and ki comes strictly after c's value. "Equal" is ``IS NOT DISTINCT FROM`` and
"after" accounts for where nulls sort, so no row is skipped or repeated.

PostgreSQL cannot seek an index with that ``OR``, so the condition also carries the range of
the first key it implies (``k1 <= c1`` when descending, for instance): with an index on the
sort keys, a page deep into a walk starts where the cursor points instead of filtering its
way there, and costs what the first page costs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from kernel.catalog.model import FieldDef
from kernel.errors import BadRequest
from kernel.fields import FieldValueError
from kernel.query.contract import SortKey
from kernel.statements import Params

if TYPE_CHECKING:
    from kernel.records.cursor import CursorCodec


@dataclass(frozen=True, slots=True)
class CursorPosition:
    """Where a cursor continues: after the row whose sort-key values it holds."""

    #: The context values ``k0``, ``k1`` ... of :func:`after_cursor`, one per sort key,
    #: each coerced to its field's type (``None`` for a null).
    values: dict[str, Any]
    #: Whether each value is null: :func:`after_cursor`'s ``nulls``, part of the
    #: statement's shape (and so of its cache key).
    nulls: tuple[bool, ...]


def encode_cursor(
    cursors: CursorCodec, scope: str, sort: Sequence[SortKey], row: Mapping[str, Any]
) -> str:
    """The cursor of the page after ``row`` (the last row shown, keyed by column) sorted by
    ``sort``, signed for ``scope``: name the listing, its owner and the sort (for instance
    ``f"{collection id}|{query.sort_signature}"``) so it is refused anywhere else."""
    return cursors.encode(scope, [row[key.field.column] for key in sort])


def decode_cursor(
    cursors: CursorCodec, scope: str, cursor: str, sort: Sequence[SortKey]
) -> CursorPosition:
    """The position a cursor made by :func:`encode_cursor` for ``scope`` and ``sort``
    holds. A forged, truncated or garbled cursor, one of another scope, or one whose values
    do not fit ``sort`` is a 400 ``invalid_cursor`` naming ``cursor``."""
    raw_values = cursors.decode(scope, cursor)
    if len(raw_values) != len(sort):
        raise _invalid("cursor does not match the sort")
    values: dict[str, Any] = {}
    for index, (key, raw) in enumerate(zip(sort, raw_values, strict=True)):
        try:
            values[f"k{index}"] = None if raw is None else key.field.type.coerce(raw)
        except FieldValueError:
            raise _invalid("cursor does not match the sort") from None
    return CursorPosition(values, tuple(raw is None for raw in raw_values))


def _invalid(message: str) -> BadRequest:
    return BadRequest(message, code="invalid_cursor", field="cursor")


def order_by(
    sort: Sequence[SortKey], column: Callable[[FieldDef], ColumnElement[Any]]
) -> list[Any]:
    return [column(key.field).desc() if key.descending else column(key.field).asc() for key in sort]


def after_cursor(
    sort: Sequence[SortKey],
    column: Callable[[FieldDef], ColumnElement[Any]],
    params: Params,
    nulls: Sequence[bool],
) -> ColumnElement[bool]:
    """Rows strictly after the cursor; its values come from context keys ``k0``, ``k1`` ...

    ``nulls[i]`` says whether the cursor's i-th value is null (the statement's shape depends
    on it, so it is part of the statement cache key).
    """
    branches = []
    for index, key in enumerate(sort):
        equal_before = [
            _equal(column(previous.field), params, f"k{j}", nulls[j], previous.field)
            for j, previous in enumerate(sort[:index])
        ]
        after = _after(column(key.field), params, f"k{index}", nulls[index], key)
        if after is None:
            continue
        branches.append(sa.and_(*equal_before, after))
    if not branches:
        return sa.false()
    condition = sa.or_(*branches)
    if len(branches) == 1:
        return condition
    seek = _first_key_range(column(sort[0].field), params, nulls[0], sort[0])
    return condition if seek is None else sa.and_(seek, condition)


def _first_key_range(
    col: ColumnElement[Any], params: Params, is_null: bool, key: SortKey
) -> ColumnElement[bool] | None:
    """The index-usable range of the first sort key that every later row lies in."""
    if key.descending:
        # DESC NULLS FIRST: after a value, only that value or smaller ones (nulls came first).
        return None if is_null else col <= _value(params, "k0", key.field)
    if is_null:
        return col.is_(None)  # ASC NULLS LAST: after a null, only nulls
    # ASC: that value or larger ones, then the nulls of an optional field (no plain range).
    return col >= _value(params, "k0", key.field) if key.field.required else None


def _value(params: Params, source: str, field: FieldDef) -> Any:
    return params.dynamic(source, field.type.sql_type())


def _equal(
    col: ColumnElement[Any], params: Params, source: str, is_null: bool, field: FieldDef
) -> ColumnElement[bool]:
    return col.is_(None) if is_null else col == _value(params, source, field)


def _after(
    col: ColumnElement[Any], params: Params, source: str, is_null: bool, key: SortKey
) -> ColumnElement[bool] | None:
    if key.descending:
        # DESC NULLS FIRST: after a null come the non-nulls; after a value, smaller values.
        return col.is_not(None) if is_null else col < _value(params, source, key.field)
    # ASC NULLS LAST: nothing comes after a null; after a value, larger values, then nulls.
    if is_null:
        return None
    larger = col > _value(params, source, key.field)
    return larger if key.field.required else sa.or_(larger, col.is_(None))
