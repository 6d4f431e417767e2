"""The view builder's form: the fields a base collection (and its join) offer, the posted
form read into a draft, and a draft checked into a :class:`Definition`.

A *draft* is a definition as plain JSON that may still be wrong; the builder shows it back
as the person left it, and :func:`definition_from_draft` turns it into a
:class:`Definition` or a 422 naming the part (``params[0].name``), like the API does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from pydantic import ValidationError

from kernel import (
    ErrorItem,
    FieldDef,
    FieldValueError,
    Operator,
    ProjectCatalog,
    Registry,
    ValidationFailed,
    queryable_fields,
)
from kernel.expr import supports
from plugins.views.definition import (
    CompiledView,
    Definition,
    JoinSpec,
    NewView,
    compile_definition,
)
from plugins.views.params import parse_param

Model = TypeVar("Model", bound=Definition)
PARAM_TYPES = ("integer", "float", "string", "boolean", "date", "datetime")
#: Param types whose default and example are stored as JSON numbers or booleans.
TYPED_PARAMS = frozenset({"integer", "float", "boolean"})


@dataclass(frozen=True, slots=True)
class FieldChoice:
    """A field the builder offers: its name in the view, type and usable operators."""

    name: str
    type_name: str
    sortable: bool
    operators: tuple[type[Operator], ...]


def skeleton(
    catalog: ProjectCatalog,
    operators: Registry[Operator],
    now: datetime,
    base: str,
    join: str | None,
) -> CompiledView:
    """The view ``base`` (joined through ``join``) with nothing chosen yet: what its fields
    are. 422 for an unknown base or a join that is no relation field of it."""
    definition = Definition(
        base_collection=base,
        projection=["id"],
        join=JoinSpec(relation=join) if join else None,
    )
    return compile_definition(definition, catalog, operators, now)


def field_choices(
    view: CompiledView, operators: Registry[Operator], now: datetime
) -> list[FieldChoice]:
    """Each field of the base, then of the joined collection, once, by its own name."""
    names = [name for name, field in queryable_fields(view.base, now).items() if name == field.name]
    if view.join is not None:
        prefix = f"{view.join.relation.name}."
        names += [
            prefix + name
            for name, field in queryable_fields(view.join.target, now).items()
            if name == field.name
        ]
    choices = []
    for name in names:
        field = view.fields[name]
        choices.append(
            FieldChoice(
                name=name,
                type_name=field.type_name,
                sortable=field.type.sortable,
                operators=tuple(
                    op for _, op in operators.items() if supports(type(field.type), op)
                ),
            )
        )
    return choices


def join_relation(definition: dict[str, Any]) -> str | None:
    """The relation a stored or draft definition joins through (``join`` may be one spec
    or a list of one)."""
    join = definition.get("join")
    if isinstance(join, list):
        join = join[0] if len(join) == 1 else None
    return join.get("relation") if isinstance(join, dict) else None


def relation_targets(view: CompiledView) -> dict[str, str]:
    """The base's fields a view may join through, each with the collection it links to."""
    targets = {}
    for name, field in view.base_fields.items():
        key = field.type.foreign_key() if field.type is not None else None
        if name == field.name and key is not None:
            targets[name] = key.target
    return targets


def _rows(form: Any, *names: str) -> list[dict[str, str]]:
    """Repeated form fields (``filter_field``, ``filter_op`` ...) zipped into rows."""
    columns = {name: form.getlist(name) for name in names}
    count = max((len(column) for column in columns.values()), default=0)
    return [
        {name: str(column[i]) if i < len(column) else "" for name, column in columns.items()}
        for i in range(count)
    ]


def draft_from_form(
    form: Any, fields: dict[str, FieldDef], operators: Registry[Operator]
) -> dict[str, Any]:
    """The posted builder form as a draft definition (values typed where they fit)."""
    draft: dict[str, Any] = {
        "description": str(form.get("description") or "").strip(),
        "base_collection": str(form.get("base_collection") or ""),
        "projection": [str(name) for name in form.getlist("projection")],
        "filters": [],
        "params": [],
        "limit": {
            "default": _number(form.get("limit_default"), 25),
            "max": _number(form.get("limit_max"), 200),
        },
    }
    if form.get("join"):
        draft["join"] = {"relation": str(form["join"])}
    for row in _rows(form, "filter_field", "filter_op", "filter_value", "filter_param"):
        if not row["filter_field"]:
            continue
        spec: dict[str, Any] = {"field": row["filter_field"], "op": row["filter_op"]}
        if row["filter_param"]:
            spec["param"] = row["filter_param"]
        else:
            spec["value"] = _filter_value(
                row["filter_value"], fields.get(spec["field"]), operators.get(spec["op"])
            )
        draft["filters"].append(spec)
    for row in _rows(
        form,
        "param_name",
        "param_type",
        "param_required",
        "param_default",
        "param_example",
        "param_description",
    ):
        if not row["param_name"].strip():
            continue
        kind = row["param_type"]
        draft["params"].append(
            {
                "name": row["param_name"].strip(),
                "type": kind,
                "required": row["param_required"] == "yes",
                "default": _param_value(row["param_default"], kind),
                "example": _param_value(row["param_example"], kind),
                "description": row["param_description"].strip(),
            }
        )
    keys = [
        f"{row['sort_field']}:{row['sort_dir'] or 'asc'}"
        for row in _rows(form, "sort_field", "sort_dir")
        if row["sort_field"]
    ]
    draft["sort"] = ",".join(keys) or None
    return draft


def _number(raw: Any, default: int) -> Any:
    text = str(raw or "").strip()
    if not text:
        return default
    return int(text) if text.isdigit() else text


def _filter_value(raw: str, field: FieldDef | None, operator: type[Operator] | None) -> Any:
    """Text from the value box as the definition stores it: a list for ``in`` and
    ``between`` (comma-separated), a boolean for ``is_null``, else one value of the
    field's type. Text that does not fit is kept as typed, for validation to name."""
    if field is None or operator is None:
        return raw
    if operator.shape == "flag":
        return raw.strip().lower() not in {"false", "0", "no"}
    if operator.shape in {"list", "pair"}:
        return [_typed(part.strip(), field, operator) for part in raw.split(",") if part.strip()]
    return _typed(raw, field, operator)


def _typed(text: str, field: FieldDef, operator: type[Operator]) -> Any:
    if operator.name == "contains":
        return text
    try:
        return field.type.to_json(field.type.parse_text(text))
    except FieldValueError:
        return text


def _param_value(raw: str, kind: str) -> Any:
    text = raw.strip()
    if not text:
        return None
    if kind in TYPED_PARAMS:
        try:
            return parse_param(kind, text)
        except ValueError:
            return text
    return text


def value_text(value: Any) -> str:
    """A stored filter value or parameter default as the form shows it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(value_text(item) for item in value)
    return str(value)


def definition_from_draft(draft: dict[str, Any]) -> Definition:
    """``draft`` as a :class:`Definition`; 422 naming each part that does not fit."""
    return _checked(Definition, draft)


def new_view_from_draft(draft: dict[str, Any], name: str) -> NewView:
    """``draft`` as a new view called ``name``; 422 naming each part that does not fit."""
    return _checked(NewView, {**draft, "name": name})


def _checked(model: type[Model], data: dict[str, Any]) -> Model:
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise ValidationFailed(items=[_problem(item) for item in error.errors()]) from None


def _problem(item: dict[str, Any]) -> ErrorItem:
    part = ""
    for step in item["loc"]:
        part += f"[{step}]" if isinstance(step, int) else f".{step}" if part else str(step)
    if part == "projection" and item["type"] == "too_short":
        return ErrorItem("invalid_value", "choose at least one column", part)
    message = str(item["msg"]).removeprefix("Value error, ")
    return ErrorItem("invalid_value", message, part)
