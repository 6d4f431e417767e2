"""Keyset pagination: the ``WHERE`` that continues after a cursor, nulls included.

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

from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from kernel.catalog.model import FieldDef
from kernel.query.contract import SortKey
from kernel.statements import Params


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
