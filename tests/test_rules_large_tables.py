"""``set_field_rules`` on a large table: from ``ddl_concurrent_index_rows`` rows each new
rule's ``CHECK`` constraint is added ``NOT VALID`` under a transient name and validated
before the op's transaction, writes going on; the transaction drops the field's old
constraints and renames the new ones (plugins/rules/operations.py, kernel/ddl/prebuilt.py).
A validation that fails, or a transaction that fails after it, is undone.

As in tests/test_evolution_large_tables.py, the tests set a threshold of a few rows and
hold the validation back — a session queued for the table's ``SHARE UPDATE EXCLUSIVE`` lock
while the constraint is being added, holding it once added — so what happens *during* it
is observed, not timed. ``tickets`` (from :func:`small_threshold_api`) holds ``number`` 0
to 9."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import asyncpg
import pytest

from kernel import transient_name
from kernel.config import Settings
from kernel.ddl.reconcile import OpReconciler
from tests.catalog_state import catalog_mismatches
from tests.test_evolution_large_tables import (
    LARGE,
    applied_the_long_way,
    assert_only_schema_keys,
    stopped_by_maintenance,
    validation_held,
)
from tests.test_interrupted_ops import tessera_of
from tests.test_rules import codes, post
from tests.test_rules_concurrent import FIELDS, finished, last_op, small_threshold_api
from tests.test_swap_concurrent import (
    constraints,
    gates,
    refused_unchanged,
    state,
    table,
    transients,
    waiting,
)

AT_LEAST_ZERO = [{"type": "min", "value": 0}]
AT_MOST_HUNDRED = [{"type": "max", "value": 100}]


def rules_of(collection: str, rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {"collection": collection, "field": "number", "rules": rules}


async def test_the_preview_says_which_way_the_rules_are_checked(
    make_settings: Callable[..., Settings], pg: asyncpg.Connection
) -> None:
    async with small_threshold_api(make_settings) as api:
        schema = f"p_{api.project}"
        preview = await api.preview("set_field_rules", **rules_of("tickets", AT_LEAST_ZERO))
        assert preview.status_code == 200, preview.text
        body = preview.json()
        assert body["impact"]["index_build"] == LARGE
        assert [(c["rule"], c["rows"]) for c in body["impact"]["constraints"]] == [("min", 0)]
        ddl = body["ddl"]
        assert len(ddl) == 3, ddl
        assert "DROP CONSTRAINT IF EXISTS tmp_c" in ddl[0]
        assert "ADD CONSTRAINT tmp_c" in ddl[0] and ddl[0].endswith("CHECK (number >= 0) NOT VALID")
        assert "VALIDATE CONSTRAINT tmp_c" in ddl[1]
        assert "RENAME CONSTRAINT tmp_c" in ddl[2] and ddl[2].endswith("TO rule_number_min")
        assert "(writes go on)" in " ".join(body["steps"])

        # Replacing them: the old constraint goes in the transaction, before the rename (a
        # new rule may take its name).
        applied = await api.apply("set_field_rules", **rules_of("tickets", AT_LEAST_ZERO))
        assert applied.status_code == 200, applied.text
        again = (await api.preview("set_field_rules", **rules_of("tickets", AT_LEAST_ZERO))).json()
        assert again["ddl"][2] == f"ALTER TABLE {schema}.tickets DROP CONSTRAINT rule_number_min"
        assert again["ddl"][3].endswith("TO rule_number_min")

        # Rules without a database form, or none: nothing to check, nothing built.
        no_check = [{"type": "enum", "value": [True]}]
        await api.create_collection("flags", [{"name": "number", "type": "boolean"}])
        flags = (await api.preview("set_field_rules", **rules_of("flags", no_check))).json()
        assert flags["impact"]["index_build"]["concurrently"] is False
        cleared = (await api.preview("set_field_rules", **rules_of("tickets", []))).json()
        assert cleared["impact"]["index_build"]["concurrently"] is False
        assert cleared["ddl"] == [f"ALTER TABLE {schema}.tickets DROP CONSTRAINT rule_number_min"]

        # A small table: the constraint is added and validated inside the transaction.
        await api.create_collection("few", FIELDS)
        await api.create("few", {"region": "eu", "number": 1})
        small = (await api.preview("set_field_rules", **rules_of("few", AT_LEAST_ZERO))).json()
        assert small["impact"]["index_build"]["concurrently"] is False
        assert small["ddl"] == [
            f"ALTER TABLE {schema}.few ADD CONSTRAINT rule_number_min CHECK (number >= 0)"
        ]
        applied = await api.apply("set_field_rules", **rules_of("few", AT_LEAST_ZERO))
        assert applied.status_code == 200, applied.text
        assert applied.json()["impact"]["index_build"] == {"concurrently": False}
        assert await constraints(pg, api, "few") == [("rule_number_min", True)]


async def test_writes_go_on_while_the_new_rule_is_validated(
    make_settings: Callable[..., Settings], pg: asyncpg.Connection
) -> None:
    async with small_threshold_api(make_settings) as api, gates(api, pg) as gate:
        tickets = table(api, "tickets")
        first = await api.apply("set_field_rules", **rules_of("tickets", AT_LEAST_ZERO))
        assert first.status_code == 200, first.text
        replacing = api.apply("set_field_rules", **rules_of("tickets", AT_MOST_HUNDRED))
        applying, lock = await validation_held(api, pg, gate, "tickets", replacing)

        # The new constraint is added, not yet validated: reads and writes go on ...
        assert [valid for _, valid in await transients(pg, api, "tickets")] == [False]
        listed = await api.client.get(api.url("/collections/tickets/records"), headers=api.headers)
        assert listed.status_code == 200, listed.text
        created = await post(api, "tickets", {"region": "us", "number": 50})
        assert created.status_code == 201, created.text
        await pg.execute(f"INSERT INTO {tickets} (region, number) VALUES ('sql', 60)")
        # ... while a write breaking the new rule, which would fail the validation, is
        # refused itself; the old rule still holds until the transaction drops it.
        refused = await post(api, "tickets", {"region": "us", "number": 500})
        assert refused.status_code == 422, refused.text
        assert refused.json()["errors"][0]["code"] == "check_failed"
        assert "a schema change in progress" in refused.json()["errors"][0]["message"]
        with pytest.raises(asyncpg.CheckViolationError):
            await pg.execute(f"INSERT INTO {tickets} (region, number) VALUES ('sql', 500)")
        assert codes(await post(api, "tickets", {"number": -1})) == [("number", "min")]
        assert not applying.done()

        await applied_the_long_way(api, pg, gate, "tickets", applying, lock)
        # Validated by its own scan: PostgreSQL marks the constraint valid.
        assert await constraints(pg, api, "tickets") == [("rule_number_max", True)]
        assert codes(await post(api, "tickets", {"number": 500})) == [("number", "max")]
        with pytest.raises(asyncpg.CheckViolationError):
            await pg.execute(f"INSERT INTO {tickets} (region, number) VALUES ('sql', 500)")
        assert (await post(api, "tickets", {"number": -1})).status_code == 201
        described = await api.client.get(api.url("/collections/tickets"), headers=api.headers)
        number = next(f for f in described.json()["fields"] if f["name"] == "number")
        assert number["rules"] == AT_MOST_HUNDRED


async def test_stored_records_breaking_a_new_rule_refuse_it_and_leave_nothing(
    make_settings: Callable[..., Settings], pg: asyncpg.Connection
) -> None:
    async with small_threshold_api(make_settings) as api:
        await api.create_collection("few", FIELDS)
        await api.create("few", {"region": "eu", "number": 1})
        for collection, breaking in (("tickets", "5 break min"), ("few", "1 break min")):
            kept = await api.apply("set_field_rules", **rules_of(collection, AT_MOST_HUNDRED))
            assert kept.status_code == 200, kept.text
            breaking_rule = rules_of(collection, [{"type": "min", "value": 5}])
            preview = (await api.preview("set_field_rules", **breaking_rule)).json()
            assert preview["impact"]["index_build"]["concurrently"] is (collection == "tickets")
            before = await state(pg, api, collection)
            refused = await api.apply("set_field_rules", **breaking_rule)
            message = await refused_unchanged(
                pg,
                api,
                collection,
                before,
                refused,
                409,
                "existing_records_break_rule",
                "set_field_rules",
            )
            assert breaking in message
            # The old rule still holds, through the API and in the database.
            assert codes(await post(api, collection, {"number": 500})) == [("number", "max")]
            with pytest.raises(asyncpg.CheckViolationError):
                await pg.execute(f"INSERT INTO {table(api, collection)} (number) VALUES (500)")
        assert await catalog_mismatches(pg, api.project) == []


async def test_a_cancelled_validation_is_undone_with_a_409_naming_the_step(
    make_settings: Callable[..., Settings], pg: asyncpg.Connection
) -> None:
    async with small_threshold_api(make_settings) as api, gates(api, pg) as gate:
        before = await state(pg, api, "tickets")
        setting = api.apply("set_field_rules", **rules_of("tickets", AT_LEAST_ZERO))
        applying, lock = await validation_held(api, pg, gate, "tickets", setting)
        validation = await waiting(pg, "ALTER TABLE%VALIDATE CONSTRAINT tmp_c%")
        assert await pg.fetchval("SELECT pg_cancel_backend($1)", validation)
        await gate.release(lock)  # the undo drops the constraint under the table's lock
        refused = await finished(applying)
        message = await refused_unchanged(
            pg, api, "tickets", before, refused, 409, "concurrent_step_failed", "set_field_rules"
        )
        assert "validate check constraint" in message and "canceling" in message


async def test_a_change_refused_after_the_validation_drops_what_it_built(
    make_settings: Callable[..., Settings], pg: asyncpg.Connection
) -> None:
    """Maintenance switched on during the validation: the new constraint is dropped, and
    the field's rules and constraints are as before."""
    async with small_threshold_api(make_settings) as api, gates(api, pg) as gate:
        setting = api.apply("set_field_rules", **rules_of("tickets", AT_LEAST_ZERO))
        await stopped_by_maintenance(api, pg, gate, "tickets", setting, "set_field_rules")


async def test_the_reconciler_drops_a_constraint_a_dead_change_left(
    make_settings: Callable[..., Settings], pg: asyncpg.Connection
) -> None:
    """A process killed after the validation leaves the new constraint under its transient
    name: it refuses writes no rule explains, until a reconcile pass drops it."""
    async with small_threshold_api(make_settings) as api:
        collection_id = await pg.fetchval(
            "SELECT id FROM tessera.collections WHERE project_id = $1 AND name = 'tickets'",
            api.project,
        )
        left = transient_name(collection_id, "rule_number_max", "number <= 100")
        await pg.execute(
            f"ALTER TABLE {table(api, 'tickets')} ADD CONSTRAINT {left} CHECK (number <= 100)"
        )
        assert (await post(api, "tickets", {"number": 500})).status_code == 422
        await OpReconciler(tessera_of(api.client).db, 60).reconcile()
        assert await transients(pg, api, "tickets") == []
        assert (await post(api, "tickets", {"number": 500})).status_code == 201


async def test_only_admins_and_schema_keys_set_field_rules(
    make_settings: Callable[..., Settings], pg: asyncpg.Connection
) -> None:
    async with small_threshold_api(make_settings) as api:
        request = {"op": "set_field_rules", "args": rules_of("tickets", AT_LEAST_ZERO)}
        await assert_only_schema_keys(api, pg, "tickets", request)
        assert (await last_op(api))["op"] == "set_field_rules"
        assert await constraints(pg, api, "tickets") == [("rule_number_min", True)]
