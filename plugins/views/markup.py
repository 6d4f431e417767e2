"""Small HTML pieces of the views admin pages. Every value is escaped here; callers pass
HTML only where a parameter says so."""

from __future__ import annotations

from collections.abc import Iterable
from html import escape
from typing import Any
from urllib.parse import urlencode

from kernel import ErrorItem


def e(value: Any) -> str:
    """``value`` as escaped text (``None`` is empty)."""
    return escape("" if value is None else str(value))


def address(base: str, **query: Any) -> str:
    """``base`` with the non-empty ``query`` values."""
    params = {key: value for key, value in query.items() if value not in (None, "")}
    return f"{base}?{urlencode(params)}" if params else base


def href(base: str, **query: Any) -> str:
    """:func:`address`, escaped for an attribute."""
    return e(address(base, **query))


def grid(headers: Iterable[str], rows: Iterable[Iterable[str]], empty: str) -> str:
    """A table of ``rows`` whose cells are HTML; ``empty`` (text) when there are none."""
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    if not body:
        return f'<p class="muted">{e(empty)}</p>'
    head = "".join(f'<th scope="col">{e(label)}</th>' for label in headers)
    return (
        f'<div class="table-wrap"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>"
    )


def problems(items: Iterable[ErrorItem], title: str) -> str:
    """An error box listing each problem with the part it names (``filters[1].op: ...``)."""
    lines = "".join(
        f"<li>{f'<code>{e(item.field)}</code>: ' if item.field else ''}{e(item.message)}</li>"
        for item in items
    )
    return (
        f'<div class="flash flash-error" role="alert" data-problems>'
        f"<strong>{e(title)}</strong><ul>{lines}</ul></div>"
    )


def option(value: str, label: str, chosen: bool) -> str:
    return f'<option value="{e(value)}"{" selected" if chosen else ""}>{e(label)}</option>'
