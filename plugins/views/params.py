"""View parameters: typed values passed as query parameters (``?customer_id=7``)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from kernel import FieldValueError, parse_int64


def parse_param(param_type: str, raw: str) -> Any:
    """The value of query-string text ``raw`` as a ``param_type``; ``ValueError`` (with a
    message for people) when it is not one. A datetime without an offset is UTC."""
    text = raw.strip()
    if param_type == "integer":
        try:
            return parse_int64(text)
        except FieldValueError:
            raise ValueError("must be a whole number") from None
    if param_type == "float":
        try:
            return float(text)
        except ValueError:
            raise ValueError("must be a number") from None
    if param_type == "boolean":
        if text.lower() not in {"true", "false", "1", "0"}:
            raise ValueError("must be true or false")
        return text.lower() in {"true", "1"}
    if param_type == "date":
        try:
            return date.fromisoformat(text)
        except ValueError:
            raise ValueError("must be a date (YYYY-MM-DD)") from None
    if param_type == "datetime":
        try:
            return datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError("must be an ISO 8601 date and time") from None
    if "\x00" in raw:
        raise ValueError("must not contain NUL characters")
    return raw
