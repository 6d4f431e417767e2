"""JSON values at Tessera's edges: bounded on the way in, always readable on the way out.

On the way in, :func:`check_json_value` refuses what PostgreSQL cannot store (NUL in a
string or key, an integer beyond 64 bits read as a float elsewhere) and what the deployment
does not accept (nesting deeper than ``json_max_depth``, more than ``json_max_bytes``).

On the way out, :func:`decode_stored_json` reads any JSON PostgreSQL holds, however deep:
orjson parses at most 1,024 levels and writes at most 254, so the deep parts of a stored
value nested more deeply than :data:`RENDER_DEPTH` (written straight into the database, or
before the limit existed) are kept as JSON text, :class:`orjson.Fragment` s that responses,
webhook payloads and ``jsonb`` parameters embed verbatim.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from kernel.fields import FieldValueError
from kernel.numbers import INT64_MAX, INT64_MIN

if TYPE_CHECKING:
    from kernel.config import Settings

#: Stored values nested more deeply than this stay JSON text when read. orjson refuses to
#: write more than 254 levels; a value travels wrapped in a few more (a record in a page, a
#: record in a webhook payload, a payload in a workflow run), so this leaves room for them.
RENDER_DEPTH = 200

#: orjson's own parsing limit: a body nested more deeply is refused before any check runs.
PARSE_DEPTH = 1024


@dataclass(frozen=True, slots=True)
class JsonLimits:
    """How deep and how large one JSON value may be (settings ``json_max_depth`` and
    ``json_max_bytes``). Depth counts arrays and objects: ``1`` is 0 deep, ``[1]`` 1,
    ``{"a": [1]}`` 2. Bytes are those of the value written as compact JSON."""

    max_depth: int = 64
    max_bytes: int = 1024 * 1024

    @classmethod
    def of(cls, settings: Settings) -> JsonLimits:
        """The limits a deployment configured (``json_max_depth``, ``json_max_bytes``)."""
        return cls(settings.json_max_depth, settings.json_max_bytes)


class JsonValueError(FieldValueError):
    """A problem at ``path`` inside a JSON value (``items[1].name``; ``""`` for the value
    itself): ``reason`` says what, ``message`` says what and where."""

    def __init__(self, code: str, reason: str, path: str) -> None:
        super().__init__(code, f"{reason} (at {path})" if path else reason)
        self.reason = reason
        self.path = path


def check_json_scalar(value: Any) -> None:
    """Refuse a JSON scalar PostgreSQL cannot store as it is: a string with NUL, an
    integer outside 64 bits, a float that is not finite. Raises :class:`FieldValueError`."""
    if isinstance(value, str):
        if "\x00" in value:
            raise FieldValueError("invalid_character", "must not contain NUL characters")
    elif isinstance(value, int) and not isinstance(value, bool):
        if not INT64_MIN <= value <= INT64_MAX:
            raise FieldValueError("out_of_range", "integers must fit in 64 bits")
    elif isinstance(value, float) and not math.isfinite(value):
        raise FieldValueError("invalid_type", "numbers must be finite")


def check_json_value(value: Any, limits: JsonLimits) -> None:
    """Refuse ``value`` unless every part passes :func:`check_json_scalar`, keys hold no
    NUL, it nests at most ``limits.max_depth`` levels and takes at most
    ``limits.max_bytes`` bytes. Walks without recursion (depth costs no stack) and stops
    at the first problem, raising a :class:`JsonValueError` that says where it is."""
    pending: list[tuple[Any, int, _Path]] = [(value, 0, None)]
    while pending:
        item, depth, path = pending.pop()
        try:
            if isinstance(item, dict):
                depth += 1
                _check_depth(depth, limits)
                for key, nested in item.items():
                    if not isinstance(key, str):
                        raise FieldValueError("invalid_type", "object keys must be strings")
                    check_json_scalar(key)
                    pending.append((nested, depth, (path, key)))
            elif isinstance(item, list):
                depth += 1
                _check_depth(depth, limits)
                pending.extend((nested, depth, (path, index)) for index, nested in enumerate(item))
            else:
                check_json_scalar(item)
        except FieldValueError as error:
            raise _located(error, path) from None
    try:
        size = len(orjson.dumps(value))
    except orjson.JSONEncodeError:
        raise _unencodable(value) from None
    if size > limits.max_bytes:
        raise JsonValueError("too_large", f"must take at most {limits.max_bytes} bytes as JSON", "")


def decode_stored_json(data: bytes | str) -> Any:
    """Parse JSON text that PostgreSQL returned (a ``json`` or ``jsonb`` value).

    Never fails on JSON PostgreSQL accepted. What orjson cannot hold comes back as
    ``orjson.Fragment`` s, JSON text that orjson writes unchanged wherever the value goes
    next (a response, a webhook payload, a ``jsonb`` parameter): in a value nested more
    deeply than :data:`RENDER_DEPTH`, each deep part below the first :data:`KEPT_LEVELS`
    levels; and a number beyond the range of a double (``1e400``)."""
    if isinstance(data, str):
        data = data.encode()
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        return _with_fragments(data)
    if _within_render_depth(data, value):
        return value
    return _with_fragments(data)


def _probe_write_depth() -> int:
    """How many levels of arrays orjson writes (254 in orjson 3), found by trying, so
    that :func:`_within_render_depth` stays exact should another orjson write more."""
    value: list[Any] = []
    depth = 1
    while True:
        try:
            orjson.dumps([value])
        except orjson.JSONEncodeError:
            return depth
        value, depth = [value], depth + 1


#: The levels orjson writes, and the arrays that wrapped around a value leave it exactly
#: :data:`RENDER_DEPTH` levels to write.
WRITE_DEPTH = _probe_write_depth()
_PADDING = WRITE_DEPTH - RENDER_DEPTH


def _within_render_depth(data: bytes, value: Any) -> bool:
    """Whether ``value``, parsed from ``data``, nests at most :data:`RENDER_DEPTH` levels,
    cheapest test first: every level takes two bytes and one opening bracket of the text,
    so short texts and texts with few brackets are decided there (most values); else
    orjson writes the value wrapped in :data:`_PADDING` arrays, in C, which succeeds
    exactly when it is shallow enough; only a value orjson refuses to write for another
    reason is walked in Python."""
    if len(data) <= 2 * RENDER_DEPTH or data.count(b"[") + data.count(b"{") <= RENDER_DEPTH:
        return True
    wrapped = value
    for _ in range(_PADDING):
        wrapped = [wrapped]
    try:
        orjson.dumps(wrapped)
    except orjson.JSONEncodeError:
        return nesting_depth(value) <= RENDER_DEPTH
    return True


#: How many levels of a deep stored value are still parsed into lists and dicts (what a
#: reader looks at: a webhook payload, its record, the record's fields).
KEPT_LEVELS = 16

#: A string, a bracket or a number in JSON text.
_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]|-?[0-9][0-9.eE+-]*', re.DOTALL)
#: Stands for a fragment while the rest is parsed; PostgreSQL cannot store NUL in a
#: ``jsonb`` string, so no stored string looks like it.
_MARK = "\x00tessera-fragment:"


def _with_fragments(data: bytes) -> Any:
    """``data`` parsed, except that every array or object just below :data:`KEPT_LEVELS`
    that nests too deeply to parse or write, and every number too large for a double,
    stays text (an ``orjson.Fragment``)."""
    spans: list[tuple[int, int]] = []
    # One entry per open array or object: where it starts, how deep its contents go.
    open_containers: list[list[int]] = []
    for token in _TOKEN.finditer(data):
        first = data[token.start()]
        if first == ord('"'):
            continue
        if first in b"[{":
            open_containers.append([token.start(), 0])
        elif first in b"]}":
            start, inner = open_containers.pop()
            height = inner + 1
            if open_containers:
                open_containers[-1][1] = max(open_containers[-1][1], height)
            if len(open_containers) == KEPT_LEVELS and height > RENDER_DEPTH - KEPT_LEVELS:
                while spans and spans[-1][0] > start:
                    spans.pop()  # numbers inside the part go out with it
                spans.append((start, token.end()))
        elif not math.isfinite(float(token[0])):
            spans.append(token.span())
    skeleton, position = [], 0
    for index, (start, end) in enumerate(spans):
        skeleton += [data[position:start], orjson.dumps(f"{_MARK}{index}")]
        position = end
    skeleton.append(data[position:])
    return _put_back(orjson.loads(b"".join(skeleton)), data, spans)


def _put_back(value: Any, data: bytes, spans: list[tuple[int, int]]) -> Any:
    """``value`` with each mark replaced by the fragment of ``data`` it stands for."""

    def restored(item: Any) -> Any:
        if isinstance(item, str) and item.startswith(_MARK):
            start, end = spans[int(item.removeprefix(_MARK))]
            return orjson.Fragment(data[start:end])
        return item

    value = restored(value)
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            for key, nested in item.items():
                item[key] = restored(nested)
            pending.extend(item.values())
        elif isinstance(item, list):
            item[:] = [restored(nested) for nested in item]
            pending.extend(item)
    return value


def nesting_depth(value: Any) -> int:
    """How many arrays and objects ``value`` nests, counted without recursion."""
    deepest = 0
    pending: list[tuple[Any, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict):
            item = item.values()
        elif not isinstance(item, list):
            continue
        depth += 1
        deepest = max(deepest, depth)
        pending.extend((nested, depth) for nested in item if isinstance(nested, dict | list))
    return deepest


#: A place in a value, built as the walk goes: None (the value itself) or (parent, key).
_Path = tuple[Any, str | int] | None


def _check_depth(depth: int, limits: JsonLimits) -> None:
    if depth > limits.max_depth:
        raise FieldValueError(
            "too_deep", f"must not nest arrays and objects more than {limits.max_depth} levels"
        )


def _located(error: FieldValueError, path: _Path) -> JsonValueError:
    return JsonValueError(error.code, error.message, _render(path))


def _render(path: _Path) -> str:
    parts: list[str] = []
    while path is not None:
        path, key = path
        parts.append(f"[{key}]" if isinstance(key, int) else f".{key}")
    return "".join(reversed(parts)).lstrip(".")


def _unencodable(value: Any) -> JsonValueError:
    """Why orjson could not write ``value``, which passed the walk: a string or key that is
    not valid Unicode (a lone surrogate), or something that is not JSON at all."""
    pending: list[tuple[Any, _Path]] = [(value, None)]
    while pending:
        item, path = pending.pop()
        if isinstance(item, dict):
            for key, nested in item.items():
                if not _valid_unicode(key):
                    return _located(_surrogate(), path)
                pending.append((nested, (path, key)))
        elif isinstance(item, list):
            pending.extend((nested, (path, index)) for index, nested in enumerate(item))
        elif isinstance(item, str) and not _valid_unicode(item):
            return _located(_surrogate(), path)
    return JsonValueError("invalid_type", "must be a JSON value", "")


def _surrogate() -> FieldValueError:
    return FieldValueError("invalid_character", "must be valid Unicode (no lone surrogates)")


def _valid_unicode(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True
