"""Query-string parsing for the records hot path.

``urllib.parse.parse_qsl`` unquotes every name and value in Python, which costs more than
the rest of parsing a list request; most parts (``limit=25``, a cursor) need no unquoting.
"""

from __future__ import annotations

from urllib.parse import unquote_plus


def query_items(query: str) -> list[tuple[str, str]]:
    """The (name, value) pairs of ``query`` in order, as
    ``parse_qsl(query, keep_blank_values=True)`` gives them: ``&``-separated, ``+`` is a
    space, ``%XX`` escapes decoded as UTF-8 (invalid bytes replaced), a part without ``=``
    has an empty value, empty parts are skipped."""
    items: list[tuple[str, str]] = []
    for part in query.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        if "%" in part or "+" in part:
            name, value = unquote_plus(name), unquote_plus(value)
        items.append((name, value))
    return items
