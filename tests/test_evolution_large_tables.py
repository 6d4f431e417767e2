"""``restore_field`` and ``change_field_type`` on a large table: from
``ddl_concurrent_index_rows`` rows, what they would check by a scan holding the table's
lock is proven before their transaction instead, writes going on — ``CHECK (column IS NOT
NULL)`` for a field restored required, each rule's constraint for a type change that keeps
every stored value — added ``NOT VALID`` and validated under a transient name, then
dropped by the transaction (kernel/ddl/prebuilt.py, plugins/schema/evolution/drops.py,
conversions.py).

As in tests/test_swap_concurrent.py, the tests set a threshold of a few rows and hold the
validation back — a session queued for the table's ``SHARE UPDATE EXCLUSIVE`` lock while
the constraint is being added, holding it once added — so what happens *during* it is
observed, not timed."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import asyncpg
import httpx
import pytest

from kernel import transient_name
from kernel.config import Settings
from kernel.ddl.reconcile import OpReconciler
from tests.catalog_state import catalog_mismatches, table_columns
from tests.conftest import Api
from tests.test_interrupted_ops import tessera_of
from tests.test_jobs import eventually
from tests.test_rules import codes, patch, post
from tests.test_rules_concurrent import THRESHOLD, finished, last_op, small_threshold_api
from tests.test_schema_evolution import set_settings
from tests.test_swap_concurrent import (
    Gates,
    constraints,
    gates,
    refused_unchanged,
    state,
    table,
    transients,
    waiting,
)

NOTES = [
    {"name": "title", "type": "string", "required": True},
    {"name": "body", "type": "string"},
]
POSTS = [
    {
        "name": "title",
        "type": "string",
        "options": {"max_length": 40},
        "rules": [{"type": "min_length", "value": 3}],
    },
    {"name": "score", "type": "integer", "rules": [{"type": "min", "value": 0}]},
]
TO_TEXT = {"collection": "posts", "field": "title", "new_type": "text"}
LARGE = {"concurrently": True, "estimated_rows": THRESHOLD, "threshold": THRESHOLD}


async def notes(api: Api, collection: str = "notes", rows: int = THRESHOLD * 2) -> None:
    """``collection``: a required ``title``, soft-dropped, every record having one."""
    await api.create_collection(collection, NOTES)
    for number in range(rows):
        await api.create(collection, {"title": f"note {number}", "body": "x"})
    dropped = await api.apply("drop_field", collection=collection, field="title")
    assert dropped.status_code == 200, dropped.text


async def posts(api: Api, collection: str = "posts", rows: int = THRESHOLD * 2) -> None:
    """``collection``: a ``title`` string of at least 3 characters, a ``score`` of 0 or more."""
    await api.create_collection(collection, POSTS)
    for number in range(rows):
        await api.create(collection, {"title": f"post {number}", "score": number})


async def nullable(pg: asyncpg.Connection, api: Api, collection: str, column: str) -> str:
    return (await table_columns(pg, api.project, collection))[column][1]


async def validation_held(
    api: Api,
    pg: asyncpg.Connection,
    gate: Gates,
    collection: str,
    applying: Coroutine[Any, Any, Any],
) -> tuple[asyncio.Task[httpx.Response], asyncpg.Connection]:
    """Start ``applying`` in the background and hold its validation back: a reader makes
    the ``ADD CONSTRAINT ... NOT VALID`` wait, a session queues for the lock the
    validation needs behind it, the reader goes — the constraint is added, the session
    holds the lock, the validation waits for it. The apply's task, and the session to
    release."""
    reader = await gate.reading(collection)
    task = asyncio.create_task(applying)
    try:
        await eventually(
            lambda: waiting(pg, "ALTER TABLE%DROP CONSTRAINT IF EXISTS tmp_c%ADD CONSTRAINT%"), 30
        )
        lock = await gate.next_in_line(collection)
        await gate.release(reader)
        await eventually(lambda: waiting(pg, "ALTER TABLE%VALIDATE CONSTRAINT tmp_c%"), 30)
    except BaseException:
        task.cancel()
        raise
    return task, lock


async def applied_the_long_way(
    api: Api,
    pg: asyncpg.Connection,
    gate: Gates,
    collection: str,
    applying: asyncio.Task[httpx.Response],
    lock: asyncpg.Connection,
) -> None:
    """Release the validation held back: the op applies, having proven beforehand, with
    no proof left behind and the catalog matching the tables."""
    await gate.release(lock)
    applied = await finished(applying)
    assert applied.status_code == 200, applied.text
    assert applied.json()["impact"]["index_build"] == {"concurrently": True}
    assert await transients(pg, api, collection) == []
    assert await catalog_mismatches(pg, api.project) == []


async def stopped_by_maintenance(
    api: Api,
    pg: asyncpg.Connection,
    gate: Gates,
    collection: str,
    applying: Coroutine[Any, Any, httpx.Response],
    op: str,
) -> None:
    """Switch maintenance on while ``applying``'s validation is held back: the transaction
    refuses, what was built is dropped, and the table and catalog are as before (but for
    the catalog version the switch bumped)."""
    before = await state(pg, api, collection)
    task, lock = await validation_held(api, pg, gate, collection, applying)
    await set_settings(api, maintenance=True)
    await gate.release(lock)
    refused = await finished(task)
    before["version"] = [{"catalog_version": before["version"][0]["catalog_version"] + 1}]
    await refused_unchanged(pg, api, collection, before, refused, 409, "maintenance_mode", op)


# -- restore_field ----------------------------------------------------------------------


async def test_the_restore_preview_says_which_way_set_not_null_goes(
    make_settings: Callable[..., Settings],
) -> None:
    async with small_threshold_api(make_settings) as api:
        await notes(api)
        preview = await api.preview("restore_field", collection="notes", field="title")
        assert preview.status_code == 200, preview.text
        body = preview.json()
        assert body["impact"]["index_build"] == LARGE
        assert body["impact"]["empty_values"] == 0
        ddl = body["ddl"]
        assert len(ddl) == 4, ddl
        assert "ADD CONSTRAINT tmp_c" in ddl[0] and ddl[0].endswith("NOT VALID")
        assert "CHECK (title IS NOT NULL)" in ddl[0]
        assert "VALIDATE CONSTRAINT tmp_c" in ddl[1]
        assert ddl[2].endswith("ALTER COLUMN title SET NOT NULL")
        assert "DROP CONSTRAINT IF EXISTS tmp_c" in ddl[3]
        assert ddl[3].endswith("not_null_title")
        assert "(writes go on)" in " ".join(body["steps"])

        # A small table: SET NOT NULL scans inside the transaction, as before.
        await notes(api, "few", rows=1)
        small = await api.preview("restore_field", collection="few", field="title")
        assert small.json()["impact"]["index_build"]["concurrently"] is False
        assert small.json()["ddl"] == [
            f"ALTER TABLE p_{api.project}.few ALTER COLUMN title SET NOT NULL"
        ]
        applied = await api.apply("restore_field", collection="few", field="title")
        assert applied.status_code == 200, applied.text
        assert await nullable_via_api(api, "few") == 422

        # Restored optional, nothing is scanned either way.
        optional = await api.preview(
            "restore_field", collection="notes", field="title", required=False
        )
        assert optional.json()["ddl"] == []
        assert optional.json()["impact"]["index_build"]["concurrently"] is False


async def nullable_via_api(api: Api, collection: str) -> int:
    """The status of a record written without ``title`` through the API."""
    return (await post(api, collection, {"body": "no title"})).status_code


async def test_writes_go_on_while_the_restore_proves_every_record_has_a_value(
    make_settings: Callable[..., Settings], pg: asyncpg.Connection
) -> None:
    async with small_threshold_api(make_settings) as api, gates(api, pg) as gate:
        await notes(api)
        restoring = api.apply("restore_field", collection="notes", field="title")
        applying, lock = await validation_held(api, pg, gate, "notes", restoring)
        notes_table = table(api, "notes")

        # The proof is added, not yet validated: reads and updates go on, and so do inserts
        # giving a title (through SQL: the API does not know the field yet) ...
        assert [valid for _, valid in await transients(pg, api, "notes")] == [False]
        listed = await api.client.get(api.url("/collections/notes/records"), headers=api.headers)
        assert listed.status_code == 200, listed.text
        first = listed.json()["data"][0]["id"]
        assert (await patch(api, "notes", first, {"body": "edited"})).status_code == 200
        await pg.execute(f"INSERT INTO {notes_table} (title, body) VALUES ('late', 'x')")
        # ... while a record without one, which would refuse the restore, is refused itself.
        refused = await post(api, "notes", {"body": "no title"})
        assert refused.status_code == 422, refused.text
        assert refused.json()["errors"][0]["code"] == "check_failed"
        assert "a schema change in progress" in refused.json()["errors"][0]["message"]
        with pytest.raises(asyncpg.CheckViolationError):
            await pg.execute(f"INSERT INTO {notes_table} (body) VALUES ('x')")
        assert not applying.done()

        await applied_the_long_way(api, pg, gate, "notes", applying, lock)
        assert await nullable(pg, api, "notes", "title") == "NO"
        # Required again, through the API and in the database.
        assert codes(await post(api, "notes", {"body": "x"})) == [("title", "required")]
        with pytest.raises(asyncpg.NotNullViolationError):
            await pg.execute(f"INSERT INTO {notes_table} (body) VALUES ('x')")
        read = await api.client.get(
            api.url(f"/collections/notes/records/{first}"), headers=api.headers
        )
        assert read.json()["body"] == "edited" and read.json()["title"]


async def test_records_without_a_value_refuse_the_restore_and_leave_nothing(
    make_settings: Callable[..., Settings], pg: asyncpg.Connection
) -> None:
    async with small_threshold_api(make_settings) as api:
        for collection, rows in (("notes", THRESHOLD * 2), ("few", 1)):
            await notes(api, collection, rows)
            await api.create(collection, {"body": "written while title was dropped"})
            before = await state(pg, api, collection)
            refused = await api.apply("restore_field", collection=collection, field="title")
            message = await refused_unchanged(
                pg, api, collection, before, refused, 422, "has_empty_values", "restore_field"
            )
            assert "1 records were written without 'title'" in message
            optional = await api.apply(
                "restore_field", collection=collection, field="title", required=False
            )
            assert optional.status_code == 200, optional.text
            assert await nullable(pg, api, collection, "title") == "YES"


async def test_the_reconciler_drops_a_proof_a_dead_restore_left(
    make_settings: Callable[..., Settings], pg: asyncpg.Connection
) -> None:
    """A process killed after the validation leaves the proof, valid: it refuses records
    without the field no rule explains, until a reconcile pass (or a retry) drops it."""
    async with small_threshold_api(make_settings) as api:
        await notes(api)
        collection_id = await pg.fetchval(
            "SELECT id FROM tessera.collections WHERE project_id = $1 AND name = 'notes'",
            api.project,
        )
        proof = transient_name(collection_id, "not_null_title", "title")
        await pg.execute(
            f"ALTER TABLE {table(api, 'notes')} ADD CONSTRAINT {proof} CHECK (title IS NOT NULL)"
        )
        assert (await post(api, "notes", {"body": "x"})).status_code == 422
        await OpReconciler(tessera_of(api.client).db, 60).reconcile()
        assert await transients(pg, api, "notes") == []
        assert (await post(api, "notes", {"body": "x"})).status_code == 201


async def test_only_admins_and_schema_keys_restore_fields(
    make_settings: Callable[..., Settings], pg: asyncpg.Connection
) -> None:
    async with small_threshold_api(make_settings) as api:
        await notes(api)
        await assert_only_schema_keys(
            api,
            pg,
            "notes",
            {"op": "restore_field", "args": {"collection": "notes", "field": "title"}},
        )
        assert await nullable(pg, api, "notes", "title") == "NO"


async def assert_only_schema_keys(
    api: Api, pg: asyncpg.Connection, collection: str, request: dict[str, Any]
) -> None:
    """A key without ``schema:write`` previews and applies nothing; one with it applies,
    the long way."""
    reader = await api.key(["records:read", "records:write"])
    writer = await api.key(["schema:write"])
    before = await state(pg, api, collection)
    for call in ("/schema/preview", "/schema/apply"):
        refused = await api.client.post(api.url(call), json=request, headers=reader)
        assert refused.status_code == 403, refused.text
    assert await state(pg, api, collection) == before
    applied = await api.client.post(api.url("/schema/apply"), json=request, headers=writer)
    assert applied.status_code == 200, applied.text
    assert applied.json()["impact"]["index_build"] == {"concurrently": True}
    assert await transients(pg, api, collection) == []


# -- change_field_type in place -----------------------------------------------------------


async def test_the_type_change_preview_says_which_way_the_rules_are_checked(
    make_settings: Callable[..., Settings], pg: asyncpg.Connection
) -> None:
    async with small_threshold_api(make_settings) as api:
        await posts(api)
        preview = await api.preview("change_field_type", **TO_TEXT)
        assert preview.status_code == 200, preview.text
        body = preview.json()
        assert body["impact"]["index_build"] == LARGE
        assert body["impact"]["rewrites_table"] is False
        assert body["impact"]["rules"]["constraints"][0]["rows"] == 0
        schema = f"p_{api.project}"
        rule = "rule_title_min_length"
        ddl = body["ddl"]
        assert len(ddl) == 6, ddl
        assert "ADD CONSTRAINT tmp_c" in ddl[0] and ddl[0].endswith("NOT VALID")
        assert "VALIDATE CONSTRAINT tmp_c" in ddl[1]
        # The old constraint and the proof go before the type changes (it would check them
        # again, scanning); the rule's constraint comes back NOT VALID: no scan.
        assert ddl[2] == f"ALTER TABLE {schema}.posts DROP CONSTRAINT {rule}"
        assert "DROP CONSTRAINT IF EXISTS tmp_c" in ddl[3] and ddl[3].endswith(rule)
        assert ddl[4] == (
            f"ALTER TABLE {schema}.posts ALTER COLUMN title TYPE TEXT USING CAST(title AS TEXT)"
        )
        assert ddl[5].startswith(f"ALTER TABLE {schema}.posts ADD CONSTRAINT {rule} CHECK")
        assert ddl[5].endswith("NOT VALID")

        # A conversion that changes the stored values (and rewrites the table anyway)
        # checks its rules inside the transaction.
        to_float = await api.preview(
            "change_field_type", collection="posts", field="score", new_type="float"
        )
        assert to_float.json()["impact"]["index_build"]["concurrently"] is False
        assert to_float.json()["impact"]["rewrites_table"] is True
        assert "tmp_c" not in " ".join(to_float.json()["ddl"])

        # A small table: the constraint comes back validated inside the transaction.
        await posts(api, "few", rows=1)
        small_args = {**TO_TEXT, "collection": "few"}
        small = await api.preview("change_field_type", **small_args)
        assert small.json()["impact"]["index_build"]["concurrently"] is False
        assert not small.json()["ddl"][-1].endswith("NOT VALID")
        applied = await api.apply("change_field_type", **small_args)
        assert applied.status_code == 200, applied.text
        assert await constraints(pg, api, "few") == [
            ("rule_score_min", True),
            ("rule_title_min_length", True),
        ]


async def test_writes_go_on_while_the_type_change_proves_its_rules(
    make_settings: Callable[..., Settings], pg: asyncpg.Connection
) -> None:
    async with small_threshold_api(make_settings) as api, gates(api, pg) as gate:
        await posts(api)
        applying, lock = await validation_held(
            api, pg, gate, "posts", api.apply("change_field_type", **TO_TEXT)
        )
        posts_table = table(api, "posts")

        assert [valid for _, valid in await transients(pg, api, "posts")] == [False]
        created = await post(api, "posts", {"title": "during", "score": 1})
        assert created.status_code == 201, created.text
        assert (await patch(api, "posts", created.json()["id"], {"score": 2})).status_code == 200
        with pytest.raises(asyncpg.CheckViolationError):
            await pg.execute(f"INSERT INTO {posts_table} (title) VALUES ('ab')")
        assert not applying.done()

        await applied_the_long_way(api, pg, gate, "posts", applying, lock)
        assert (await table_columns(pg, api.project, "posts"))["title"][0] == "text"
        # Proven, not scanned: PostgreSQL marks the constraint NOT VALID; it refuses all
        # the same, and validating it finds every stored record keeps the rule.
        assert await constraints(pg, api, "posts") == [
            ("rule_score_min", True),
            ("rule_title_min_length", False),
        ]
        assert codes(await post(api, "posts", {"title": "ab"})) == [("title", "min_length")]
        with pytest.raises(asyncpg.CheckViolationError):
            await pg.execute(f"INSERT INTO {posts_table} (title) VALUES ('ab')")
        await pg.execute(f"ALTER TABLE {posts_table} VALIDATE CONSTRAINT rule_title_min_length")
        listed = await api.client.get(
            api.url("/collections/posts/records?limit=100"), headers=api.headers
        )
        assert "during" in [record["title"] for record in listed.json()["data"]]


async def test_stored_records_breaking_a_rule_refuse_the_type_change(
    make_settings: Callable[..., Settings], pg: asyncpg.Connection
) -> None:
    """A record that breaks the rule (written while the field was dropped, its constraint
    back ``NOT VALID``) fails the proof: the op is refused, nothing changed."""
    async with small_threshold_api(make_settings) as api:
        await posts(api)
        posts_table = table(api, "posts")
        assert (await api.apply("drop_field", collection="posts", field="title")).is_success
        await pg.execute(f"UPDATE {posts_table} SET title = 'ab' WHERE id = 1")
        assert (await api.apply("restore_field", collection="posts", field="title")).is_success
        before = await state(pg, api, "posts")
        refused = await api.apply("change_field_type", **TO_TEXT)
        message = await refused_unchanged(
            pg,
            api,
            "posts",
            before,
            refused,
            409,
            "existing_records_break_rule",
            "change_field_type",
        )
        assert "1 break min_length" in message
        await pg.execute(f"UPDATE {posts_table} SET title = 'abc' WHERE id = 1")
        applied = await api.apply("change_field_type", **TO_TEXT)
        assert applied.status_code == 200, applied.text


async def test_a_type_change_stopped_after_its_proofs_undoes_them(
    make_settings: Callable[..., Settings], pg: asyncpg.Connection
) -> None:
    """Maintenance switched on during the validation: the proof is dropped, and the column,
    its constraints and the catalog are as before."""
    async with small_threshold_api(make_settings) as api, gates(api, pg) as gate:
        await posts(api)
        changing = api.apply("change_field_type", **TO_TEXT)
        await stopped_by_maintenance(api, pg, gate, "posts", changing, "change_field_type")


async def test_only_admins_and_schema_keys_change_field_types(
    make_settings: Callable[..., Settings], pg: asyncpg.Connection
) -> None:
    async with small_threshold_api(make_settings) as api:
        await posts(api)
        await assert_only_schema_keys(
            api, pg, "posts", {"op": "change_field_type", "args": TO_TEXT}
        )
        assert (await last_op(api))["op"] == "change_field_type"


#: Values a literal must carry exactly into SQL: a percent sign (escaped for another
#: driver's parameter style), a colon (a bind marker to SQLAlchemy's text), runs of spaces
#: and a tab (collapsed or expanded by a renderer for people), ``;`` and a newline (where
#: a renderer splits statements), a quote.
AWKWARD = ["50% off", "a:b", "p  q", "t\tb", "x;\ny", "it's"]


async def test_a_proof_carries_awkward_literals_exactly(
    make_settings: Callable[..., Settings], pg: asyncpg.Connection
) -> None:
    """The proof of an ``enum`` rule is built before the transaction from SQL rendered for
    it: every stored value must pass it, and the rule must refuse and accept exactly what
    the catalog's rule does afterwards."""
    field = {"name": "label", "type": "string", "rules": [{"type": "enum", "value": AWKWARD}]}
    async with small_threshold_api(make_settings) as api:
        await api.create_collection("offers", [field])
        for number in range(THRESHOLD * 2):
            await api.create("offers", {"label": AWKWARD[number % len(AWKWARD)]})
        changed = await api.apply(
            "change_field_type", collection="offers", field="label", new_type="text"
        )
        assert changed.status_code == 200, changed.text
        assert changed.json()["impact"]["index_build"] == {"concurrently": True}
        for value in AWKWARD:
            created = await post(api, "offers", {"label": value})
            assert created.status_code == 201, (value, created.text)
            await pg.execute(f"INSERT INTO {table(api, 'offers')} (label) VALUES ($1)", value)
        for near in ["50%% off", "p q", "t    b", "x; y", "a: b"]:
            assert codes(await post(api, "offers", {"label": near})) == [("label", "enum")]
            with pytest.raises(asyncpg.CheckViolationError):
                await pg.execute(f"INSERT INTO {table(api, 'offers')} (label) VALUES ($1)", near)
        assert await transients(pg, api, "offers") == []
