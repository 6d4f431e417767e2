"""JSON values at Tessera's edges: bounded on the way in, always readable on the way out.

On the way in, :func:`check_json_value` refuses what PostgreSQL cannot store (NUL in a
string or key, an integer beyond 64 bits read as a float elsewhere) and what the deployment
does not accept (nesting deeper than ``json_max_depth``, more than ``json_max_bytes``).

On the way out, :func:`decode_stored_json` reads any JSON PostgreSQL holds, however deep:
orjson parses at most 1,024 levels and writes at most 254, so a stored value nested more
deeply than :data:`RENDER_DEPTH` (written straight into the database, or before the limit
existed) is kept as its JSON text, an :class:`orjson.Fragment` that responses, webhook
payloads and ``jsonb`` parameters embed verbatim.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import orjson

from kernel.fields import FieldValueError
from kernel.numbers import INT64_MAX, INT64_MIN

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
    at the first problem; the :class:`FieldValueError` message names where it is
    (``at items[2].name``)."""
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
        raise FieldValueError("too_large", f"must take at most {limits.max_bytes} bytes as JSON")


def decode_stored_json(data: bytes | str) -> Any:
    """Parse JSON text that PostgreSQL returned (a ``json`` or ``jsonb`` value).

    Never fails on JSON PostgreSQL accepted: a value nested more deeply than
    :data:`RENDER_DEPTH` comes back as ``orjson.Fragment(data)``, its text, which orjson
    writes unchanged wherever the value goes next."""
    # Depth never exceeds the number of opening brackets: most values are decided here.
    if isinstance(data, str):
        data = data.encode()
    if data.count(b"[") + data.count(b"{") <= RENDER_DEPTH:
        return orjson.loads(data)
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        return orjson.Fragment(data)
    return orjson.Fragment(data) if nesting_depth(value) > RENDER_DEPTH else value


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


def _located(error: FieldValueError, path: _Path) -> FieldValueError:
    """``error`` with the place it was found appended to its message."""
    if path is None:
        return error
    return FieldValueError(error.code, f"{error.message} (at {_render(path)})")


def _render(path: _Path) -> str:
    parts: list[str] = []
    while path is not None:
        path, key = path
        parts.append(f"[{key}]" if isinstance(key, int) else f".{key}")
    return "".join(reversed(parts)).lstrip(".")


def _unencodable(value: Any) -> FieldValueError:
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
    return FieldValueError("invalid_type", "must be a JSON value")


def _surrogate() -> FieldValueError:
    return FieldValueError("invalid_character", "must be valid Unicode (no lone surrogates)")


def _valid_unicode(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True
