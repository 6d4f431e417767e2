"""A view definition: its JSON shape (API.md, "Views") and its validation against a catalog.

:func:`compile_definition` checks a definition against the project's catalog and returns a
:class:`CompiledView`: the fields it names resolved to the catalog, its filters as an
expression whose values are literals or placeholders for parameters. It is what the runtime
runs and what a ``POST``/``PUT`` validates (every problem is a 422 naming the part, like
``filters[1].op``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from kernel import (
    BadRequest,
    CollectionDef,
    ErrorItem,
    FieldDef,
    Operator,
    ProjectCatalog,
    Registry,
    ValidationFailed,
    queryable_fields,
)
from kernel.expr import (
    And,
    Binder,
    Compare,
    ExpressionError,
    FieldRef,
    ListValue,
    Node,
    Placeholder,
    supports,
)
from kernel.expr import Literal as Constant
from kernel.query import Limits, SortKey, parse_list_query
from plugins.views.params import parse_param

NAME_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
ParamType = Literal["integer", "float", "string", "boolean", "date", "datetime"]
#: The most filters a definition holds (a request adds its own, up to the records limit).
MAX_DEFINITION_FILTERS = 20
MAX_PROJECTION = 100
#: Query-string names the query contract owns: a new definition's parameter may not take
#: one (a stored one that does is run with the name meaning the parameter).
RESERVED_PARAMS = frozenset({"cursor", "filter", "include", "limit", "sort"})
#: Label prefixes of base and joined columns in the view's inner select.
BASE, JOINED = "b_", "j_"


class FilterSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    field: str
    op: str
    value: Any = None
    param: str | None = None


class ParamSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN)
    type: ParamType
    required: bool = False
    default: Any = None
    example: Any = None
    description: str = Field(default="", max_length=500)


class JoinSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    relation: str


class LimitSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    default: int = Field(default=25, ge=1)
    max: int = Field(default=200, ge=1, le=1000)

    @model_validator(mode="after")
    def _ordered(self) -> LimitSpec:
        if self.default > self.max:
            raise ValueError("default must not exceed max")
        return self


class Definition(BaseModel):
    """The body of ``PUT .../definition``."""

    model_config = ConfigDict(extra="forbid")

    description: str = Field(default="", max_length=2000)
    base_collection: str
    projection: list[str] = Field(min_length=1, max_length=MAX_PROJECTION)
    # A list is accepted so that two joins are refused by name (422 ``too_many_joins``).
    join: JoinSpec | list[JoinSpec] | None = None
    filters: list[FilterSpec] = Field(default_factory=list)
    sort: str | None = None
    params: list[ParamSpec] = Field(default_factory=list, max_length=20)
    limit: LimitSpec = Field(default_factory=LimitSpec)

    @field_validator("join")
    @classmethod
    def _one_join(cls, join: JoinSpec | list[JoinSpec] | None) -> JoinSpec | list[JoinSpec] | None:
        """A list of no join or one join is stored as that (what readers of stored
        definitions expect); a longer list stays for the catalog check to refuse."""
        if isinstance(join, list) and len(join) <= 1:
            return join[0] if join else None
        return join


class NewView(Definition):
    """The body of ``POST .../views``."""

    name: str = Field(pattern=NAME_PATTERN)

    def definition(self) -> Definition:
        return Definition.model_validate(self.model_dump(exclude={"name"}))


@dataclass(frozen=True, slots=True)
class Join:
    relation: FieldDef
    target: CollectionDef


@dataclass(slots=True)
class CompiledView:
    """A definition resolved against one catalog snapshot.

    ``fields`` maps every name the view may use (``title``, ``customer.name``) to a copy of
    the catalog field whose ``column`` is its label in the view's inner select.
    """

    definition: Definition
    base: CollectionDef
    join: Join | None
    fields: dict[str, FieldDef]
    base_fields: dict[str, FieldDef]
    joined_fields: dict[str, FieldDef]
    projection: list[str]
    filter: Node | None
    params: dict[str, ParamSpec]
    #: Per filter context key (``f0``...): the parameter it takes its value from.
    param_keys: dict[str, tuple[str, FieldDef, Operator]]
    default_sort: tuple[SortKey, ...]

    @property
    def id_field(self) -> FieldDef:
        return self.fields["id"]

    def limits(self, max_filters: int) -> Limits:
        return Limits(self.definition.limit.default, self.definition.limit.max, max_filters)

    def resolve(self, name: str) -> tuple[FieldDef, None] | None:
        """A field the caller may filter and sort on: one of the projection."""
        return (self.fields[name], None) if name in self.projection else None


def _labelled(fields: dict[str, FieldDef], prefix: str, qualifier: str) -> dict[str, FieldDef]:
    """Copies of ``fields`` named as the view names them and reading the view's labels. A
    joined field is never ``required``: the join leaves it null where there is no link or
    the caller may not read the linked record (keyset pagination relies on it)."""
    return {
        f"{qualifier}{name}": dataclasses.replace(
            field,
            name=f"{qualifier}{name}",
            column=f"{prefix}{field.column}",
            required=field.required and prefix == BASE,
        )
        for name, field in fields.items()
    }


def compile_definition(
    definition: Definition,
    catalog: ProjectCatalog,
    operators: Registry[Operator],
    now: datetime,
    *,
    lenient: bool = False,
) -> CompiledView:
    """Check ``definition`` against ``catalog``; 422 listing every problem by its part.

    ``lenient`` (at run time): projection fields that are gone (soft-dropped) are left out
    instead of refused, so a view never exposes them and keeps answering.
    """
    problems: list[ErrorItem] = []
    resolved = catalog.resolve_collection(definition.base_collection, now)
    if resolved is None:
        raise ValidationFailed(
            f"unknown collection {definition.base_collection!r}",
            code="unknown_collection",
            field="base_collection",
        )
    base = resolved[0]
    base_fields = _labelled(queryable_fields(base, now), BASE, "")
    fields = dict(base_fields)
    join = _join(definition, catalog, base_fields, now, problems)
    joined_fields: dict[str, FieldDef] = {}
    if join is not None:
        joined_fields = _labelled(
            queryable_fields(join.target, now), JOINED, f"{join.relation.name}."
        )
        fields.update(joined_fields)

    projection = []
    for index, name in enumerate(definition.projection):
        if name in fields:
            projection.append(name)
        elif not lenient:
            problems.append(
                ErrorItem("unknown_field", f"unknown field {name!r}", f"projection[{index}]")
            )
    params = {param.name: param for param in definition.params}
    if len(params) != len(definition.params):
        problems.append(ErrorItem("duplicate_param", "parameter names must differ", "params"))
    for index, param in enumerate(definition.params):
        if param.name in RESERVED_PARAMS and not lenient:
            problems.append(
                ErrorItem(
                    "reserved_param",
                    f"{param.name!r} is a query-contract parameter; name it otherwise",
                    f"params[{index}].name",
                )
            )
        for part in ("default", "example"):
            value = getattr(param, part)
            if value is not None and not _fits(param.type, value):
                problems.append(
                    ErrorItem("invalid_value", f"must be a {param.type}", f"params[{index}].{part}")
                )
    if len(definition.filters) > MAX_DEFINITION_FILTERS:
        problems.append(
            ErrorItem(
                "too_many_filters",
                f"at most {MAX_DEFINITION_FILTERS} filters",
                "filters",
            )
        )
    terms, param_keys = _filters(definition, fields, params, operators, problems)
    default_sort = _default_sort(definition, fields, operators, problems)
    if problems:
        raise ValidationFailed(items=problems)
    return CompiledView(
        definition=definition,
        base=base,
        join=join,
        fields=fields,
        base_fields=base_fields,
        joined_fields=joined_fields,
        projection=projection,
        filter=None if not terms else terms[0] if len(terms) == 1 else And(tuple(terms)),
        params=params,
        param_keys=param_keys,
        default_sort=default_sort,
    )


def _join(
    definition: Definition,
    catalog: ProjectCatalog,
    base_fields: dict[str, FieldDef],
    now: datetime,
    problems: list[ErrorItem],
) -> Join | None:
    spec = definition.join
    if isinstance(spec, list):
        if len(spec) > 1:
            problems.append(ErrorItem("too_many_joins", "a view joins at most once", "join"))
            return None
        spec = spec[0] if spec else None
    if spec is None:
        return None
    field = base_fields.get(spec.relation)
    key = field.type.foreign_key() if field is not None and field.type is not None else None
    target = catalog.resolve_collection(key.target, now) if key is not None else None
    if target is None:
        problems.append(
            ErrorItem(
                "unknown_relation",
                f"{spec.relation!r} is no relation field of {definition.base_collection!r}",
                "join.relation",
            )
        )
        return None
    return Join(field, target[0])


def _filters(
    definition: Definition,
    fields: dict[str, FieldDef],
    params: dict[str, ParamSpec],
    operators: Registry[Operator],
    problems: list[ErrorItem],
) -> tuple[list[Node], dict[str, tuple[str, FieldDef, Operator]]]:
    terms: list[Node] = []
    param_keys: dict[str, tuple[str, FieldDef, Operator]] = {}
    binder = Binder(fields, operators)
    for index, spec in enumerate(definition.filters):
        part = f"filters[{index}]"
        field = fields.get(spec.field)
        if field is None:
            problems.append(
                ErrorItem("unknown_field", f"unknown field {spec.field!r}", f"{part}.field")
            )
            continue
        operator = operators.get(spec.op)
        if operator is None or not supports(type(field.type), operator):
            usable = sorted(n for n, op in operators.items() if supports(type(field.type), op))
            problems.append(
                ErrorItem(
                    "unsupported_operator",
                    f"operator {spec.op!r} does not apply to {spec.field!r} "
                    f"({field.type_name}); use one of: {', '.join(usable)}",
                    f"{part}.op",
                )
            )
            continue
        if spec.param is not None:
            if spec.param not in params:
                problems.append(
                    ErrorItem(
                        "undeclared_param",
                        f"parameter {spec.param!r} is not declared in params",
                        f"{part}.param",
                    )
                )
                continue
            if operator.shape != "scalar":
                problems.append(
                    ErrorItem(
                        "invalid_param", f"{spec.op!r} cannot take a parameter", f"{part}.param"
                    )
                )
                continue
            key = f"f{index}"
            param_keys[key] = (spec.param, field, operator())
            terms.append(Compare(operator.name, FieldRef(spec.field), Placeholder(key)))
            continue
        term = Compare(operator.name, FieldRef(spec.field), _constant(spec.value))
        try:
            binder.bind(term)
        except (ExpressionError, ValueError) as error:
            problems.append(ErrorItem("invalid_value", str(error), f"{part}.value"))
            continue
        terms.append(term)
    return terms, param_keys


def _constant(value: Any) -> Constant | ListValue:
    if isinstance(value, list):
        return ListValue(tuple(Constant(item) for item in value))
    return Constant(value)


def _default_sort(
    definition: Definition,
    fields: dict[str, FieldDef],
    operators: Registry[Operator],
    problems: list[ErrorItem],
) -> tuple[SortKey, ...]:
    items = [("sort", definition.sort)] if definition.sort else []
    try:
        query = parse_list_query(
            items,
            lambda name: (fields[name], None) if name in fields else None,
            operators,
            Limits(1, 1, 0),
            id_field=fields["id"],
        )
    except BadRequest as error:
        problems.append(ErrorItem("invalid_sort", error.items[0].message, "sort"))
        return ()
    return query.sort


def _fits(param_type: str, value: Any) -> bool:
    """Whether a JSON ``value`` (a default, an example) has ``param_type``."""
    try:
        parse_param(param_type, value if isinstance(value, str) else _text(value))
    except ValueError:
        return False
    return True


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
