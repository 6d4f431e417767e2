"""A write's changed field names reach the outbox as ``text[]`` through one bound text
(``kernel.records.statements._text_array``): PostgreSQL must read back exactly the names."""

from __future__ import annotations

import asyncpg
import pytest

from kernel.records.statements import _text_array

AWKWARD = [
    (),
    ("title",),
    ("title", "amount", "due_at"),
    ('say "hi"',),
    (
        "back\\slash",
        'both \\"',
    ),
    ("NULL", "null"),
    ("", " spaced ", "comma,inside", "{braces}"),
]


@pytest.mark.parametrize("names", AWKWARD, ids=repr)
async def test_the_names_come_back_exactly(database_url: str, names: tuple[str, ...]) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        stored = await conn.fetchval("SELECT $1::text::text[]", _text_array(names))
    finally:
        await conn.close()
    assert stored == list(names)
