"""``tessera.records.readable``: the seam a plugin's own SELECT goes through (docs/plugins.md,
"Your own SELECT over records"), used here as a third-party plugin would use it."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from kernel import Forbidden, NotFound, Principal, Readable, Unauthorized
from kernel.query import Params, compile_statement
from kernel.security.principal import ANONYMOUS
from tests.conftest import Api


def user(project: str, user_id: int) -> Principal:
    return Principal(
        kind="user",
        id=user_id,
        project_id=project,
        role="member",
        scopes=frozenset({"records:read"}),
    )


async def rows_of(tessera: Any, readable: Readable, principal: Principal) -> list[str]:
    """The titles ``principal`` may see, selected by hand over an alias of the table."""
    params = Params()
    t = readable.table.alias("t")
    statement = sa.select(t.c.title).order_by(t.c.title)
    condition = readable.condition(t, params)
    if condition is not None:
        statement = statement.where(condition)
    compiled = compile_statement(statement, params)
    rows = await tessera.db.pool.fetch(compiled.sql, *compiled.args(principal.context))
    return [row["title"] for row in rows]


@pytest.fixture
async def notes(api: Api) -> Any:
    await api.create_collection(
        "notes", [{"name": "title", "type": "string"}, {"name": "owner", "type": "integer"}]
    )
    await api.set_policies("notes", list="owner = @auth.id", read="owner = @auth.id")
    for title, owner in (("a", 1), ("b", 2), ("c", 1)):
        await api.create("notes", {"title": title, "owner": owner})
    tessera = api.client.app.state.tessera  # type: ignore[attr-defined]
    return tessera, await tessera.catalog.get(api.project)


async def test_a_readable_collection_shows_a_principal_only_their_rows(
    api: Api, notes: Any
) -> None:
    tessera, catalog = notes
    admin = Principal(kind="admin", id=1)
    everything = tessera.records.readable(catalog, api.project, "notes", admin)
    assert everything.rule is None and everything.collection.name == "notes"
    assert await rows_of(tessera, everything, admin) == ["a", "b", "c"]

    for user_id, titles in ((1, ["a", "c"]), (2, ["b"]), (3, [])):
        principal = user(api.project, user_id)
        readable = tessera.records.readable(catalog, api.project, "notes", principal, "read")
        assert readable.rule is not None
        assert await rows_of(tessera, readable, principal) == titles


async def test_what_a_records_read_refuses_readable_refuses(api: Api, notes: Any) -> None:
    tessera, catalog = notes
    refusals: list[tuple[Principal, str, type[Exception], str]] = [
        (user("other", 1), "notes", Forbidden, "wrong_project"),
        (user(api.project, 1), "nope", NotFound, "collection_not_found"),
        (
            Principal(kind="key", id=9, project_id=api.project, scopes=frozenset()),
            "notes",
            Forbidden,
            "missing_scope",
        ),
        (
            Principal(
                kind="key",
                id=9,
                project_id=api.project,
                scopes=frozenset({"records:read"}),
                collections=frozenset({"other"}),
            ),
            "notes",
            Forbidden,
            "collection_not_allowed",
        ),
    ]
    for principal, name, error, code in refusals:
        with pytest.raises(error) as raised:
            tessera.records.readable(catalog, api.project, name, principal)
        assert raised.value.items[0].code == code
    await api.set_policies("notes", list=None, read=None)  # admins only
    catalog = await tessera.catalog.get(api.project)
    with pytest.raises(Unauthorized):
        tessera.records.readable(catalog, api.project, "notes", ANONYMOUS)
    with pytest.raises(Forbidden):
        tessera.records.readable(catalog, api.project, "notes", user(api.project, 1))
