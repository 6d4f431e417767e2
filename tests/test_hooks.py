"""One test per hook specification: a throwaway plugin implements it, the kernel uses it.

``test_every_hookspec_has_a_test_and_a_doc_section`` keeps this file and docs/plugins.md
in step with kernel/hookspecs.py.
"""

from __future__ import annotations

import inspect
import re
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import asyncpg
import pytest
import sqlalchemy as sa

from kernel import hookspecs
from kernel.config import Settings
from kernel.db.engine import Database
from kernel.db.migrate import current_revisions, migrate, plugin_migrations, schema_drift
from kernel.errors import PluginError
from kernel.plugins import load_plugins
from kernel.runtime import Tessera
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Api, running, unique_id
from tests.fake_plugins import FakeDistributions
from tests.server import run_tessera, tessera_env
from tests.services import create_database, drop_database

ROOT = Path(__file__).resolve().parent.parent


def probe(fake: FakeDistributions, name: str, source: str) -> str:
    module = f"probe_{name.replace('.', '_')}"
    fake.add(f"tests-{module.replace('_', '-')}", {name: module}, {module: source})
    return module


async def signed_in(client) -> dict[str, str]:
    response = await client.post(
        "/api/admin/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
    )
    return {"Authorization": f"Bearer {response.json()['token']}"}


async def new_project(client, headers) -> Api:
    project_id = unique_id()
    response = await client.post(
        "/api/projects", json={"id": project_id, "name": "p"}, headers=headers
    )
    assert response.status_code == 201
    return Api(client, headers, project_id)


def hookspec_names() -> list[str]:
    return sorted(
        name
        for name, function in inspect.getmembers(hookspecs, inspect.isfunction)
        if hasattr(function, "tessera_spec")
    )


def test_every_hookspec_has_a_test_and_a_doc_section() -> None:
    names = hookspec_names()
    assert len(names) >= 16
    tests = {name for name, _ in inspect.getmembers(sys.modules[__name__], inspect.isfunction)}
    docs = (ROOT / "docs" / "plugins.md").read_text()
    for name in names:
        assert f"test_hook_{name}" in tests, f"no test for hook {name}"
        assert re.search(rf"^### `{name}`", docs, re.MULTILINE), f"docs/plugins.md lacks {name}"
        assert inspect.getdoc(getattr(hookspecs, name)), f"hook {name} has no docstring"


async def test_hook_plugin_info(
    fake_distributions: FakeDistributions, make_settings: Callable[..., Settings]
) -> None:
    probe(
        fake_distributions,
        "probe.info",
        """
        from kernel import PluginInfo, hookimpl

        @hookimpl
        def plugin_info():
            return PluginInfo(description="says who it is", requires=["operators.*"])
        """,
    )
    async with running(make_settings()) as client:
        plugins = {p["name"]: p for p in (await client.get("/api/plugins")).json()["data"]}
    assert plugins["probe.info"]["description"] == "says who it is"
    assert plugins["probe.info"]["requires"] == ["operators.*"]
    assert plugins["probe.info"]["distribution"] == "tests-probe-probe-info"


SLUG_TYPE = """
    import re
    import sqlalchemy as sa
    from kernel import FieldType, FieldValueError, hookimpl

    class Slug(FieldType):
        name = "slug"
        label = "Slug"
        operators = frozenset({"eq", "in"})

        def sql_type(self):
            return sa.String(100)

        def coerce(self, value):
            if not isinstance(value, str) or not re.fullmatch(r"[a-z0-9-]+", value):
                raise FieldValueError("invalid_slug", "must be lowercase words joined by -")
            return value

        def json_schema(self):
            return {"type": "string", "pattern": "^[a-z0-9-]+$"}

    @hookimpl
    def register_field_types():
        return [Slug]
"""


async def test_hook_register_field_types(
    fake_distributions: FakeDistributions, make_settings: Callable[..., Settings]
) -> None:
    probe(fake_distributions, "probe.slug", SLUG_TYPE)
    async with running(make_settings()) as client:
        api = await new_project(client, await signed_in(client))
        await api.create_collection("pages", [{"name": "slug", "type": "slug", "required": True}])
        assert (await api.create("pages", {"slug": "hello-world"}))["slug"] == "hello-world"
        refused = await client.post(
            api.url("/collections/pages/records"), json={"slug": "Hello World"}, headers=api.headers
        )
        assert refused.status_code == 422
        assert refused.json()["errors"][0]["code"] == "invalid_slug"
        schema = (await client.get(api.url("/openapi.json"), headers=api.headers)).json()
        assert schema["components"]["schemas"]["PagesRecord"]["properties"]["slug"]["pattern"]


async def test_hook_register_operators(
    fake_distributions: FakeDistributions, make_settings: Callable[..., Settings]
) -> None:
    probe(
        fake_distributions,
        "probe.starts",
        """
        import sqlalchemy as sa
        from kernel import Operator, hookimpl

        class StartsWith(Operator):
            name = "starts_with"
            label = "starts with"
            field_types = frozenset({"string"})

            def to_sql(self, left, right):
                return sa.func.starts_with(left, right)

            def evaluate(self, left, right):
                return isinstance(left, str) and left.startswith(right)

        @hookimpl
        def register_operators():
            return [StartsWith]
        """,
    )
    async with running(make_settings()) as client:
        api = await new_project(client, await signed_in(client))
        await api.create_collection("words", [{"name": "word", "type": "string"}])
        for word in ("apple", "apricot", "banana"):
            await api.create("words", {"word": word})
        response = await client.get(
            api.url("/collections/words/records"),
            params={"filter[word][starts_with]": "ap"},
            headers=api.headers,
        )
        assert sorted(r["word"] for r in response.json()["data"]) == ["apple", "apricot"]
        refused = await client.get(
            api.url("/collections/words/records"),
            params={"filter[id][starts_with]": "1"},
            headers=api.headers,
        )
        assert refused.status_code == 400


async def test_hook_register_ddl_operations(
    fake_distributions: FakeDistributions, make_settings: Callable[..., Settings]
) -> None:
    probe(
        fake_distributions,
        "probe.ops",
        """
        from functools import partial
        import sqlalchemy as sa
        from pydantic import BaseModel
        from kernel import DdlOperation, Plan, Step, hookimpl

        class Args(BaseModel):
            collection: str

        def add_index(schema, table, ops):
            ops.create_index(f"ix_{table}_created", table, ["created_at"], schema=schema)

        class IndexCreatedAt(DdlOperation):
            name = "index_created_at"
            label = "Index created_at"
            Args = Args

            def plan(self):
                self.collection = self.context.collection(self.args.collection)
                table = self.collection.table
                return Plan(steps=[Step("index", partial(add_index, self.context.schema, table))])

            async def write_catalog(self, writer):
                return {"indexed": self.collection.name}

        @hookimpl
        def register_ddl_operations():
            return [IndexCreatedAt]
        """,
    )
    async with running(make_settings()) as client:
        api = await new_project(client, await signed_in(client))
        await api.create_collection("events", [])
        preview = await api.preview("index_created_at", collection="events")
        assert preview.json()["ddl"] == [
            f"CREATE INDEX ix_events_created ON p_{api.project}.events (created_at)"
        ]
        applied = await api.apply("index_created_at", collection="events")
        assert applied.status_code == 200, applied.text
        assert applied.json()["result"] == {"indexed": "events"}
        again = await api.apply("index_created_at", collection="events")
        assert again.status_code == 409  # the index exists: PostgreSQL refuses, op failed


def registry_probe(hook: str, base: str, body: str) -> str:
    return f"""
        from kernel import {base}, hookimpl

        class Probe({base}):
            name = "probe"
{body}

        @hookimpl
        def {hook}():
            return [Probe]
    """


def check_registry(
    fake_distributions: FakeDistributions, hook: str, base: str, kind: str, body: str
) -> None:
    probe(fake_distributions, f"probe.{hook}", registry_probe(hook, base, body))
    tessera = Tessera.build(Settings())
    registry = tessera.registries()[kind]
    assert "probe" in registry
    assert registry.owner("probe") == f"probe.{hook}"


def test_hook_register_rule_types(fake_distributions: FakeDistributions) -> None:
    check_registry(
        fake_distributions,
        "register_rule_types",
        "RuleType",
        "rule type",
        "            label = 'probe'\n            Options = None\n"
        "            def check(self, value, record):\n                return None\n",
    )


def test_hook_register_storage_backends(fake_distributions: FakeDistributions) -> None:
    body = (
        "".join(
            f"            async def {m}(self, *a, **k):\n                return None\n"
            for m in ("upload_url", "download_url", "head", "put", "delete")
        )
        + "            def open(self, key):\n                return iter(())\n"
    )
    check_registry(
        fake_distributions, "register_storage_backends", "StorageBackend", "storage backend", body
    )


def test_hook_register_backup_parts(fake_distributions: FakeDistributions) -> None:
    body = (
        "            async def export(self, project_id, writer):\n                pass\n"
        "            async def restore(self, project_id, reader):\n                pass\n"
    )
    check_registry(fake_distributions, "register_backup_parts", "BackupPart", "backup part", body)


def test_hook_register_workflow_actions(fake_distributions: FakeDistributions) -> None:
    body = (
        "            label = 'probe'\n            Options = None\n"
        "            async def run(self, context):\n                return {}\n"
    )
    check_registry(
        fake_distributions, "register_workflow_actions", "WorkflowAction", "workflow action", body
    )


async def test_hook_register_transports(
    fake_distributions: FakeDistributions, make_settings: Callable[..., Settings]
) -> None:
    probe(
        fake_distributions,
        "probe.transport",
        """
        from fastapi import APIRouter
        from kernel import Transport, hookimpl

        class Echo(Transport):
            name = "echo"

            def router(self):
                router = APIRouter(prefix="/api/projects/{project_id}/realtime")

                @router.get("/echo")
                async def echo(project_id: str):
                    return {"project": project_id, "bus": self.tessera.settings.effective_event_bus()}

                return router

        @hookimpl
        def register_transports():
            return [Echo]
        """,
    )
    async with running(make_settings()) as client:
        response = await client.get("/api/projects/demo/realtime/echo")
    assert response.json() == {"project": "demo", "bus": "postgres"}


async def test_hook_register_event_buses(
    fake_distributions: FakeDistributions, make_settings: Callable[..., Settings]
) -> None:
    module = probe(
        fake_distributions,
        "probe.bus",
        """
        from kernel import EventBus, hookimpl

        published = []

        class LoopbackBus(EventBus):
            name = "loopback"

            async def start(self):
                pass

            async def stop(self):
                pass

            async def publish(self, channel, payload):
                published.append((channel, payload))
                await self.dispatch(channel, payload)

            async def healthy(self):
                return True

        @hookimpl
        def register_event_buses():
            return [LoopbackBus]
        """,
    )
    async with running(make_settings(event_bus="loopback")) as client:
        api = await new_project(client, await signed_in(client))
        await api.create_collection("notes", [])
        assert (await client.get("/readyz")).status_code == 200
    published = sys.modules[module].published
    assert ("catalog", f"{api.project} 2") in published


async def test_hook_register_quota_policies(
    fake_distributions: FakeDistributions, make_settings: Callable[..., Settings]
) -> None:
    probe(
        fake_distributions,
        "probe.quota",
        """
        from kernel import QuotaExceeded, QuotaPolicy, hookimpl

        class FrozenCollections(QuotaPolicy):
            name = "frozen"

            async def check_write(self, project_id, collection, action):
                if collection == "frozen":
                    raise QuotaExceeded("frozen", headers={"Retry-After": "60"})

        @hookimpl
        def register_quota_policies():
            return [FrozenCollections]
        """,
    )
    async with running(make_settings()) as client:
        api = await new_project(client, await signed_in(client))
        await api.create_collection("frozen", [])
        await api.create_collection("open", [])
        refused = await client.post(
            api.url("/collections/frozen/records"), json={}, headers=api.headers
        )
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "60"
        assert (
            await client.post(api.url("/collections/open/records"), json={}, headers=api.headers)
        ).status_code == 201
        # Both OpenAPI documents say project routes may now answer 429, and only those.
        paths = (await client.get("/openapi.json")).json()["paths"]
        records = "/api/projects/{project_id}/collections/{collection}/records"
        assert "429" in paths[records]["post"]["responses"]
        assert "429" not in paths["/api/admin/login"]["post"]["responses"]
        project_document = await client.get(api.url("/openapi.json"), headers=api.headers)
        own = project_document.json()["paths"][
            f"/api/projects/{api.project}/collections/frozen/records"
        ]
        assert "429" in own["post"]["responses"]


async def test_hook_register_routes(
    fake_distributions: FakeDistributions, make_settings: Callable[..., Settings]
) -> None:
    probe(
        fake_distributions,
        "probe.routes",
        """
        from fastapi import APIRouter
        from kernel import NotFound, hookimpl

        @hookimpl
        def register_routes(tessera):
            router = APIRouter(prefix="/api/probe", tags=["probe"])

            @router.get("/plugins")
            async def count():
                return {"plugins": len(tessera.plugins.names)}

            @router.get("/missing")
            async def missing():
                raise NotFound("nothing here", code="probe_missing")

            return [router]
        """,
    )
    async with running(make_settings()) as client:
        assert (await client.get("/api/probe/plugins")).json()["plugins"] >= 5
        missing = await client.get("/api/probe/missing")
        assert missing.status_code == 404
        assert missing.json()["errors"][0]["code"] == "probe_missing"
        assert "/api/probe/plugins" in (await client.get("/openapi.json")).json()["paths"]


async def test_hook_project_openapi_paths(
    fake_distributions: FakeDistributions, make_settings: Callable[..., Settings]
) -> None:
    probe(
        fake_distributions,
        "probe.openapi",
        """
        from kernel import hookimpl

        @hookimpl
        async def project_openapi_paths(tessera, catalog, visible):
            if not visible("secret"):
                return {}
            path = f"/api/projects/{catalog.project.id}/probe"
            return {path: {"get": {"summary": "probe", "responses": {"200": {}}}}}
        """,
    )
    async with running(make_settings()) as client:
        headers = await signed_in(client)
        api = await new_project(client, headers)
        document = await client.get(api.url("/openapi.json"), headers=headers)
        assert document.json()["paths"][api.url("/probe")]["get"]["summary"] == "probe"
        key = await api.key(["records:read"], collections=["orders"])
        hidden = await client.get(api.url("/openapi.json"), headers=key)
        assert hidden.status_code == 200, hidden.text
        assert api.url("/probe") not in hidden.json()["paths"]


async def test_hook_on_schema_applied(
    fake_distributions: FakeDistributions, make_settings: Callable[..., Settings]
) -> None:
    module = probe(
        fake_distributions,
        "probe.applied",
        """
        from kernel import hookimpl

        applied = []

        @hookimpl
        def on_schema_applied(project_id, op):
            applied.append((project_id, op["op"], op["status"]))
            if op["op"] == "add_field":
                raise RuntimeError("a failing listener must not fail the request")
        """,
    )
    wrapper = probe(
        fake_distributions,
        "probe.applied_wrapper",
        """
        from kernel import hookimpl

        seen = []

        @hookimpl(wrapper=True)
        def on_schema_applied(op):
            try:
                returned = yield
            except RuntimeError as error:
                seen.append((op["op"], str(error)))
                raise
            seen.append((op["op"], "returned"))
            return returned
        """,
    )
    async with running(make_settings()) as client:
        api = await new_project(client, await signed_in(client))
        await api.create_collection("things", [])
        added = await client.post(
            api.url("/collections/things/fields"),
            json={"name": "x", "type": "text"},
            headers=api.headers,
        )
        assert added.status_code == 201
    assert sys.modules[module].applied == [
        (api.project, "create_collection", "applied"),
        (api.project, "add_field", "applied"),
    ]
    # The wrapper runs around each plugin's call and sees the failure the kernel isolates.
    seen = sys.modules[wrapper].seen
    assert ("create_collection", "returned") in seen
    assert ("add_field", "a failing listener must not fail the request") in seen


def test_hook_register_admin_panels(fake_distributions: FakeDistributions) -> None:
    probe(
        fake_distributions,
        "probe.panel",
        """
        from kernel import AdminPanel, hookimpl

        async def render(request, tessera):
            return "<p>probe</p>"

        @hookimpl
        def register_admin_panels(tessera):
            return [AdminPanel(slug="probe", title="Probe", render=render)]
        """,
    )
    tessera = Tessera.build(Settings())
    panels = [
        panel
        for _, returned in tessera.plugins.call_each("register_admin_panels", tessera=tessera)
        for panel in returned
    ]
    assert [(p.slug, p.title) for p in panels if p.slug == "probe"] == [("probe", "Probe")]


LIFECYCLE = """
    from kernel import hookimpl

    events = []

    @hookimpl
    async def startup(tessera):
        events.append(("startup", tessera.db is not None))

    @hookimpl
    def shutdown(tessera):
        events.append(("shutdown", True))
        raise RuntimeError("shutdown failures are logged, not raised")
"""


async def test_hook_startup(
    fake_distributions: FakeDistributions, make_settings: Callable[..., Settings]
) -> None:
    module = probe(fake_distributions, "probe.life", LIFECYCLE)
    async with running(make_settings()) as client:
        assert (await client.get("/healthz")).status_code == 200
        assert sys.modules[module].events == [("startup", True)]


async def test_startup_failure_names_the_plugin(
    fake_distributions: FakeDistributions, make_settings: Callable[..., Settings]
) -> None:
    probe(
        fake_distributions,
        "probe.badstart",
        """
        from kernel import hookimpl

        @hookimpl
        def startup(tessera):
            raise RuntimeError("cannot reach the mothership")
        """,
    )
    with pytest.raises(PluginError, match="plugin probe.badstart: startup failed: cannot reach"):
        async with running(make_settings()):
            pass


async def test_hook_shutdown(
    fake_distributions: FakeDistributions, make_settings: Callable[..., Settings]
) -> None:
    module = probe(fake_distributions, "probe.life", LIFECYCLE)
    async with running(make_settings()):
        pass
    assert sys.modules[module].events == [("startup", True), ("shutdown", True)]


async def test_hook_register_migrations(
    fake_distributions: FakeDistributions, postgres_server: str
) -> None:
    location = fake_distributions.root / "probe_migrations"
    location.mkdir()
    (location / "probe_0001.py").write_text(
        textwrap.dedent(
            """
            import sqlalchemy as sa
            from alembic import op

            revision = "probe_0001"
            down_revision = None
            branch_labels = ("probe",)
            depends_on = "0001"

            def upgrade():
                op.create_table(
                    "probe_notes",
                    sa.Column("id", sa.BigInteger, primary_key=True),
                    schema="tessera",
                )

            def downgrade():
                op.drop_table("probe_notes", schema="tessera")
            """
        )
    )
    probe(
        fake_distributions,
        "probe.migrations",
        f"""
        from pathlib import Path
        import sqlalchemy as sa
        from kernel import hookimpl
        from kernel.db.migrate import Migrations

        metadata = sa.MetaData(schema="tessera")
        sa.Table("probe_notes", metadata, sa.Column("id", sa.BigInteger, primary_key=True))

        @hookimpl
        def register_migrations():
            return [Migrations(Path({str(location)!r}), metadata)]
        """,
    )
    url = await create_database(postgres_server, "tessera_probe")
    try:
        plugins = plugin_migrations(load_plugins(Settings()))
        db = await Database.connect(url, pool_size=1, connect_timeout=10)
        try:
            await migrate(db.engine, plugins)
            assert "probe_0001" in await current_revisions(db.engine)
            assert await schema_drift(db.engine, plugins) == []
            exists = await db.scalar(sa.select(sa.func.to_regclass("tessera.probe_notes")))
            assert exists == "tessera.probe_notes"
        finally:
            await db.close()
        tessera = Tessera.build(Settings(database_url=url, secret_key="x" * 32))
        assert location in [m.location for m in tessera.migrations]
    finally:
        await drop_database(postgres_server, url)


def test_hook_register_commands(fake_distributions: FakeDistributions) -> None:
    probe(
        fake_distributions,
        "probe.command",
        """
        from kernel import hookimpl
        from kernel.commands import Command

        class Hello(Command):
            name = "hello"
            help = "say hello"

            def add_arguments(self, parser):
                parser.add_argument("--name", default="world")

            def run(self, args, settings):
                print(f"hello {args.name} on port {settings.port}")
                return 3

        @hookimpl
        def register_commands():
            return [Hello]
        """,
    )
    env = tessera_env(PYTHONPATH=f"{fake_distributions.root}:{ROOT}", TESSERA_PORT="8123")
    result = run_tessera(["hello", "--name", "Ada"], env)
    assert result.returncode == 3, result.stderr
    assert result.stdout.strip() == "hello Ada on port 8123"
    assert "say hello" in run_tessera(["--help"], env).stdout


def test_a_plugin_command_may_not_shadow_a_kernel_command(
    fake_distributions: FakeDistributions,
) -> None:
    probe(
        fake_distributions,
        "probe.shadow",
        """
        from kernel import hookimpl
        from kernel.commands import Command

        class Serve(Command):
            name = "serve"
            help = "not the real one"

            def run(self, args, settings):
                return 0

        @hookimpl
        def register_commands():
            return [Serve]
        """,
    )
    env = tessera_env(PYTHONPATH=f"{fake_distributions.root}:{ROOT}")
    result = run_tessera(["plugins", "list"], env)
    assert result.returncode == 2
    assert "command 'serve' is reserved by the kernel" in result.stderr


async def test_hook_register_reference_holders(
    fake_distributions: FakeDistributions,
    make_settings: Callable[..., Settings],
    pg: asyncpg.Connection,
) -> None:
    """A holder's rewrite runs inside the rename's transaction: when it fails, the column,
    the policies it named and what the holder itself wrote are all as before."""
    fake_distributions.add(
        "tests-probe-stubborn",
        {"probe.stubborn": "probe_stubborn"},
        {
            "probe_stubborn": """
            import sqlalchemy as sa
            from kernel import Conflict, ReferenceHolder, hookimpl

            class Stubborn(ReferenceHolder):
                name = "stubborn"

                async def dependents(self, context, change):
                    return []

                async def rewrite(self, context, change):
                    await context.conn.execute(sa.text("CREATE TABLE public.probe_trace (x int)"))
                    raise Conflict("the stubborn holder refuses", code="stubborn")

            @hookimpl
            def register_reference_holders():
                return [Stubborn]
        """
        },
    )
    async with running(make_settings()) as client:
        api = await new_project(client, await signed_in(client))
        await api.create_collection("orders", [{"name": "status", "type": "string"}])
        await api.set_policies("orders", list="status = 'paid'")
        refused = await api.apply(
            "rename_field", collection="orders", field="status", new_name="state"
        )
        assert refused.status_code == 409, refused.text
        assert refused.json()["errors"][0]["code"] == "stubborn"
        columns = await pg.fetch(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = $1 AND table_name = 'orders'",
            f"p_{api.project}",
        )
        assert "status" in {row["column_name"] for row in columns}
        assert await pg.fetchval("SELECT to_regclass('public.probe_trace')") is None
        described = await api.client.get(api.url("/collections/orders"), headers=api.headers)
        assert described.json()["policies"]["list"] == "status = 'paid'"
        ops = await api.client.get(api.url("/schema/ops?limit=1"), headers=api.headers)
        assert ops.json()["data"][0]["status"] == "failed"
