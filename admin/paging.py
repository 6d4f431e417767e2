"""Previous/next links over keyset cursors.

The kernel's lists only ever hand out the *next* cursor. To go back, a page's URL carries
the trail of cursors that led to it (``trail``, oldest first, ``""`` for the first page).
"""

from __future__ import annotations

from dataclasses import dataclass

from admin.urls import with_query

MAX_TRAIL = 50


@dataclass(frozen=True, slots=True)
class Pages:
    previous: str | None
    next: str | None


def page_links(
    path: str,
    params: list[tuple[str, str]],
    cursor: str,
    trail: list[str],
    next_cursor: str | None,
) -> Pages:
    """Links to the pages around the current one; ``params`` are the list's other query
    parameters (filters, sort), kept on both links."""
    previous = None
    if trail:
        back = [("trail", item) for item in trail[:-1]]
        here = [("cursor", trail[-1])] if trail[-1] else []
        previous = with_query(path, [*params, *here, *back])
    following = None
    if next_cursor:
        forward = [("trail", item) for item in [*trail, cursor][-MAX_TRAIL:]]
        following = with_query(path, [*params, ("cursor", next_cursor), *forward])
    return Pages(previous, following)
