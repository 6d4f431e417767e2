"""Query-string parsing for the hot paths (records and plugin hot routes).

``urllib.parse.parse_qsl`` unquotes every name and value in Python, which costs more than
the rest of parsing a list request. Most parts need no unquoting (``limit=25``, a cursor),
and the ones that do (``filter%5Bqty%5D%5Bgte%5D=5``) come back request after request, so
their decoded form is kept.
"""

from __future__ import annotations

from urllib.parse import unquote_plus

from kernel.lru import LruCache

#: Escaped parts kept decoded (least recently used dropped first), and the longest part
#: worth keeping.
MAX_CACHED_PARTS = 4096
MAX_CACHED_PART_LENGTH = 256

_decoded: LruCache[str, tuple[str, str]] = LruCache(MAX_CACHED_PARTS)


def query_items(query: str) -> list[tuple[str, str]]:
    """The (name, value) pairs of ``query`` in order, as
    ``parse_qsl(query, keep_blank_values=True)`` gives them: ``&``-separated, ``+`` is a
    space, ``%XX`` escapes decoded as UTF-8 (invalid bytes replaced), a part without ``=``
    has an empty value, empty parts are skipped."""
    items: list[tuple[str, str]] = []
    for part in query.split("&"):
        if not part:
            continue
        if "%" in part or "+" in part:
            items.append(_decode(part))
        else:
            name, _, value = part.partition("=")
            items.append((name, value))
    return items


def _decode(part: str) -> tuple[str, str]:
    decoded = _decoded.get(part)
    if decoded is None:
        name, _, value = part.partition("=")
        decoded = (unquote_plus(name), unquote_plus(value))
        if len(part) <= MAX_CACHED_PART_LENGTH:
            _decoded.put(part, decoded)
    return decoded
