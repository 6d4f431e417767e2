"""Keyset pagination: the ``WHERE`` that continues after a cursor, nulls included.

PostgreSQL sorts nulls last ascending and first descending. For sort keys k1..kn (the last
always ``id``), the rows after a cursor c are those where, for some i, k1..k(i-1) equal
c's values and ki comes strictly after c's value. "Equal" is ``IS NOT DISTINCT FROM`` and
"after" accounts for where nulls sort, so no row is skipped or repeated.
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
    return sa.or_(*branches) if branches else sa.false()


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
