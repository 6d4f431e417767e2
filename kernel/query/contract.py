"""Parse the query contract (API.md, "Query contract") into an expression and a sort.

``filter[field][op]=value`` terms become :class:`~kernel.expr.ast.Compare` nodes whose
values are :class:`~kernel.expr.ast.Placeholder` s, so a list statement compiles once per
*shape* and every value stays a bind parameter. Every problem is a 400 naming the
parameter.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from kernel.catalog.model import AliasDef, FieldDef
from kernel.errors import BadRequest
from kernel.expr.ast import And, Compare, FieldRef, ListValue, Literal, Node, Placeholder
from kernel.expr.bind import supports
from kernel.fields import FieldValueError
from kernel.numbers import parse_int64
from kernel.operators import Operator
from kernel.registry import Registry

FILTER_KEY = re.compile(r"^filter\[([^\[\]]+)\](?:\[([^\[\]]+)\])?$")
MAX_SORT_KEYS = 5
MAX_LIST_VALUES = 100

Resolve = Callable[[str], "tuple[FieldDef, AliasDef | None] | None"]


@dataclass(frozen=True, slots=True)
class SortKey:
    field: FieldDef
    descending: bool

    @property
    def signature(self) -> str:
        return f"{self.field.column}:{'desc' if self.descending else 'asc'}"


@dataclass(slots=True)
class ListQuery:
    """A parsed list request. ``filter`` has placeholders whose values are in ``values``;
    ``sort`` always ends with ``id``; ``extra`` holds parameters the contract does not own
    (a view's own parameters)."""

    filter: Node | None
    values: dict[str, Any]
    sort: tuple[SortKey, ...]
    limit: int
    include: tuple[str, ...]
    extra: dict[str, str] = field(default_factory=dict)
    aliases_used: list[AliasDef] = field(default_factory=list)
    #: ``column:asc|desc`` of every sort key, comma-separated (statement and cursor keys).
    sort_signature: str = field(init=False)

    def __post_init__(self) -> None:
        self.sort_signature = ",".join(key.signature for key in self.sort)


@dataclass(frozen=True, slots=True)
class Limits:
    default_limit: int
    max_limit: int
    max_filters: int


def split_cursor(
    items: Iterable[tuple[str, str]],
) -> tuple[tuple[tuple[str, str], ...], str | None]:
    """The query-string ``items`` without ``cursor`` (the query's *shape*, what
    :func:`parse_list_query` parses; a client walking pages repeats it), and the cursor
    (the last one given; None when absent or empty)."""
    shape: list[tuple[str, str]] = []
    cursor: str | None = None
    for key, value in items:
        if key == "cursor":
            cursor = value or None
        else:
            shape.append((key, value))
    return tuple(shape), cursor


def include_names(values: Iterable[str]) -> tuple[str, ...]:
    """The names of repeated ``include`` parameters, each a comma list, in order and
    without repeats."""
    names = (part.strip() for value in values for part in value.split(","))
    return tuple(dict.fromkeys(name for name in names if name))


def parse_list_query(
    items: Iterable[tuple[str, str]],
    resolve: Resolve,
    operators: Registry[Operator],
    limits: Limits,
    *,
    id_field: FieldDef,
    extra_params: frozenset[str] = frozenset(),
) -> ListQuery:
    """Parse query-string ``items`` (repeated keys allowed, the cursor already taken off
    by :func:`split_cursor`) into a :class:`ListQuery`.

    ``resolve`` maps a client field name to its field (and the alias used, if any);
    ``extra_params`` are names the caller owns (view parameters). Parameters starting with
    ``_`` are ignored (cache busters); anything else unknown is a 400.
    """
    terms: list[Node] = []
    values: dict[str, Any] = {}
    aliases: list[AliasDef] = []
    sort_text: list[str] = []
    limit_text: str | None = None
    include: list[str] = []  # the raw include parameters
    extra: dict[str, str] = {}

    def field_named(name: str, parameter: str) -> FieldDef:
        resolved = resolve(name)
        if resolved is None:
            raise BadRequest(f"unknown field {name!r}", code="unknown_field", field=parameter)
        found, alias = resolved
        if alias is not None:
            aliases.append(alias)
        return found

    for key, raw in items:
        match = FILTER_KEY.match(key)
        if match is not None:
            name, op_name = match.group(1), match.group(2) or "eq"
            target = field_named(name, key)
            terms.append(_filter_term(key, target, op_name, raw, operators, values))
        elif key == "sort":
            sort_text.append(raw)
        elif key == "limit":
            limit_text = raw
        elif key == "include":
            include.append(raw)
        elif key in extra_params:
            extra[key] = raw
        elif key.startswith("filter"):
            raise BadRequest(
                "filters are written filter[field]=value or filter[field][op]=value",
                code="invalid_filter",
                field=key,
            )
        elif not key.startswith("_"):
            raise BadRequest(
                f"unknown query parameter {key!r}", code="unknown_parameter", field=key
            )

    if len(terms) > limits.max_filters:
        raise BadRequest(
            f"at most {limits.max_filters} filters per request",
            code="too_many_filters",
            field="filter",
        )
    sort = _sort_keys(sort_text, field_named, id_field)
    return ListQuery(
        filter=None if not terms else terms[0] if len(terms) == 1 else And(tuple(terms)),
        values=values,
        sort=sort,
        limit=_limit(limit_text, limits),
        include=include_names(include),
        extra=extra,
        aliases_used=aliases,
    )


def _filter_term(
    key: str,
    target: FieldDef,
    op_name: str,
    raw: str,
    operators: Registry[Operator],
    values: dict[str, Any],
) -> Node:
    operator = operators.get(op_name)
    if operator is None or not supports(type(target.type), operator):
        usable = sorted(name for name, op in operators.items() if supports(type(target.type), op))
        raise BadRequest(
            f"operator {op_name!r} does not apply to {target.name!r} ({target.type_name}); "
            f"use one of: {', '.join(usable)}",
            code="unsupported_operator",
            field=key,
        )

    def parse_one(text: str) -> Any:
        if "\x00" in text:
            # PostgreSQL text cannot hold NUL; refuse it here rather than as a database error.
            raise BadRequest("must not contain NUL characters", code="invalid_value", field=key)
        if operator.name == "contains":
            return text
        try:
            return target.type.parse_text(text)
        except FieldValueError as error:
            raise BadRequest(error.message, code="invalid_value", field=key) from None

    def placeholder(value: Any) -> Placeholder:
        name = f"q{len(values)}"
        values[name] = value
        return Placeholder(name)

    subject = FieldRef(target.name)
    if operator.shape == "flag":
        flag = raw.strip().lower()
        if flag not in {"true", "false", "1", "0"}:
            raise BadRequest("must be true or false", code="invalid_value", field=key)
        return Compare(operator.name, subject, Literal(flag in {"true", "1"}))
    if operator.shape in {"list", "pair"}:
        parts = _split_list(raw, key)
        if operator.shape == "pair" and len(parts) != 2:
            raise BadRequest("takes exactly two values: low,high", code="invalid_value", field=key)
        if not parts or len(parts) > MAX_LIST_VALUES:
            raise BadRequest(
                f"takes 1 to {MAX_LIST_VALUES} comma-separated values",
                code="invalid_value",
                field=key,
            )
        parsed = [parse_one(part) for part in parts]
        if operator.shape == "list":
            return Compare(operator.name, subject, placeholder(parsed))
        return Compare(operator.name, subject, ListValue(tuple(placeholder(v) for v in parsed)))
    return Compare(operator.name, subject, placeholder(parse_one(raw)))


def _split_list(raw: str, key: str) -> list[str]:
    """``a,b,c``, or a JSON array (``["a,b", "c"]``) when values contain commas."""
    text = raw.strip()
    if text.startswith("["):
        try:
            items = orjson.loads(text)
        except orjson.JSONDecodeError:
            raise BadRequest("malformed JSON list", code="invalid_value", field=key) from None
        if not isinstance(items, list) or not all(isinstance(i, str | int | float) for i in items):
            raise BadRequest("a JSON list of strings or numbers", code="invalid_value", field=key)
        return [str(item) for item in items]
    return [part.strip() for part in text.split(",")] if text else []


def _sort_keys(
    texts: list[str], field_named: Callable[[str, str], FieldDef], id_field: FieldDef
) -> tuple[SortKey, ...]:
    keys: list[SortKey] = []
    for text in texts:
        for part in text.split(","):
            name, _, direction = part.strip().partition(":")
            if not name:
                raise BadRequest(
                    "write sort=field:asc,other:desc", code="invalid_sort", field="sort"
                )
            if direction not in {"", "asc", "desc"}:
                raise BadRequest(
                    f"sort direction {direction!r} must be asc or desc",
                    code="invalid_sort",
                    field="sort",
                )
            target = field_named(name, "sort")
            if not target.type.sortable:
                raise BadRequest(f"{name!r} cannot be sorted on", code="invalid_sort", field="sort")
            if any(key.field.column == target.column for key in keys):
                raise BadRequest(f"{name!r} is sorted on twice", code="invalid_sort", field="sort")
            keys.append(SortKey(target, direction == "desc"))
    if len(keys) > MAX_SORT_KEYS:
        raise BadRequest(f"at most {MAX_SORT_KEYS} sort keys", code="invalid_sort", field="sort")
    if not any(key.field.column == "id" for key in keys):
        keys.append(SortKey(id_field, False))
    return tuple(keys)


def _limit(text: str | None, limits: Limits) -> int:
    if text is None:
        return limits.default_limit
    try:
        limit = parse_int64(text)
    except FieldValueError:
        raise BadRequest(
            "limit must be a whole number", code="invalid_limit", field="limit"
        ) from None
    if not 1 <= limit <= limits.max_limit:
        raise BadRequest(
            f"limit must be between 1 and {limits.max_limit}", code="invalid_limit", field="limit"
        )
    return limit
