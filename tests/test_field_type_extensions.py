"""``FieldType.extra_ddl`` and ``FieldType.to_json_many``, through a throwaway plugin."""

from __future__ import annotations

import sys
from collections.abc import Callable

import asyncpg

from kernel.config import Settings
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Api, running, unique_id
from tests.fake_plugins import FakeDistributions

TYPES = """
    from functools import partial

    import sqlalchemy as sa
    from kernel import FieldType, Step, hookimpl

    batches = []


    def create_lower_index(schema, table, column, ops):
        ops.create_index(f"ix_{table}_{column}_lower", table, [sa.text(f"lower({column})")], schema=schema)


    class Tag(FieldType):
        name = "tag"
        label = "Tag"

        def sql_type(self):
            return sa.String(40)

        def coerce(self, value):
            return str(value)

        def extra_ddl(self, schema, table, column, placement):
            return [Step(f"lower-case index on {column}", partial(create_lower_index, schema, table, column))]


    class Shout(FieldType):
        name = "shout"
        label = "Shout"

        def sql_type(self):
            return sa.Text()

        def coerce(self, value):
            return str(value)

        def to_json(self, value):
            raise AssertionError("a batching type is rendered by to_json_many only")

        async def to_json_many(self, values, context):
            batches.append((list(values), context.project_id, context.collection, context.principal.is_admin))
            return [value.upper() + "!" for value in values]


    @hookimpl
    def register_field_types():
        return [Tag, Shout]
"""


async def started_api(client) -> Api:
    login = await client.post(
        "/api/admin/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
    )
    headers = {"Authorization": f"Bearer {login.json()['token']}"}
    project_id = unique_id()
    created = await client.post(
        "/api/projects", json={"id": project_id, "name": "p"}, headers=headers
    )
    assert created.status_code == 201
    return Api(client, headers, project_id)


async def indexes(pg: asyncpg.Connection, project_id: str) -> dict[str, str]:
    rows = await pg.fetch(
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = $1", f"p_{project_id}"
    )
    return {row["indexname"]: row["indexdef"] for row in rows}


async def test_a_field_types_extra_ddl_is_previewed_and_applied_with_the_column(
    fake_distributions: FakeDistributions,
    make_settings: Callable[..., Settings],
    pg: asyncpg.Connection,
) -> None:
    fake_distributions.add("tests-ext-types", {"probe.ext": "ext_types"}, {"ext_types": TYPES})
    async with running(make_settings()) as client:
        api = await started_api(client)
        await api.create_collection("posts", [{"name": "topic", "type": "tag"}])
        preview = await api.preview(
            "add_field", collection="posts", field={"name": "label", "type": "tag"}
        )
        assert preview.status_code == 200, preview.text
        assert preview.json()["steps"] == ["add column label", "lower-case index on label"]
        assert preview.json()["ddl"][1].startswith("CREATE INDEX ix_posts_label_lower ON")
        assert "ix_posts_label_lower" not in await indexes(pg, api.project)
        applied = await api.apply(
            "add_field", collection="posts", field={"name": "label", "type": "tag"}
        )
        assert applied.status_code == 200, applied.text
    found = await indexes(pg, api.project)
    assert "lower((label)::text)" in found["ix_posts_label_lower"]
    assert "lower((topic)::text)" in found["ix_posts_topic_lower"], "create_collection too"


async def test_a_failing_extra_ddl_leaves_no_column(
    fake_distributions: FakeDistributions,
    make_settings: Callable[..., Settings],
    pg: asyncpg.Connection,
) -> None:
    fake_distributions.add("tests-ext-types", {"probe.ext": "ext_types"}, {"ext_types": TYPES})
    async with running(make_settings()) as client:
        api = await started_api(client)
        await api.create_collection("posts", [])
        await pg.execute(f'CREATE INDEX ix_posts_label_lower ON "p_{api.project}".posts (id)')
        applied = await api.apply(
            "add_field", collection="posts", field={"name": "label", "type": "tag"}
        )
        assert applied.status_code == 409, applied.text
        columns = await pg.fetch(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'posts'",
            f"p_{api.project}",
        )
    assert "label" not in {row["column_name"] for row in columns}


async def test_a_batching_type_renders_a_whole_page_in_one_call(
    fake_distributions: FakeDistributions, make_settings: Callable[..., Settings]
) -> None:
    fake_distributions.add("tests-ext-types", {"probe.ext": "ext_types"}, {"ext_types": TYPES})
    async with running(make_settings()) as client:
        api = await started_api(client)
        await api.create_collection("notes", [{"name": "body", "type": "shout"}])
        batches = sys.modules["ext_types"].batches
        created = await api.create("notes", {"body": "one"})
        assert created["body"] == "ONE!"
        await api.create("notes", {"body": None})
        await api.create("notes", {"body": "three"})
        batches.clear()
        page = await client.get(api.url("/collections/notes/records?sort=id"), headers=api.headers)
        assert page.status_code == 200, page.text
        assert [r["body"] for r in page.json()["data"]] == ["ONE!", None, "THREE!"]
        assert batches == [(["one", "three"], api.project, "notes", True)]
        one = await client.get(
            api.url(f"/collections/notes/records/{created['id']}"), headers=api.headers
        )
        assert one.json()["body"] == "ONE!"
        assert len(batches) == 2
