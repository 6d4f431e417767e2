"""How a view's rows become JSON records: worked out once per compiled view (kept on
:class:`plugins.views.cache.ActiveView`), applied per row."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from plugins.views.definition import CompiledView

#: A projected field's output: its name, its column and how its value becomes JSON (None:
#: it already is).
FieldOutput = tuple[str, str, Callable[[Any], Any] | None]


def output_of(view: CompiledView) -> tuple[FieldOutput, ...]:
    """How each projected field of ``view`` is output, in projection order."""
    output = []
    for name in view.projection:
        field = view.fields[name]
        to_json = None if type(field.type).keeps_json() else field.type.to_json
        output.append((name, field.column, to_json))
    return tuple(output)


def render(output: tuple[FieldOutput, ...], row: Any) -> dict[str, Any]:
    """One row of the view's statement as a record."""
    record = {}
    for name, column, to_json in output:
        value = row[column]
        if value is not None and to_json is not None:
            value = to_json(value)
        record[name] = value
    return record
