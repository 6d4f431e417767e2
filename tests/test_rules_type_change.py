"""A field's rules go with it through schema changes (issue 18). Through a type change, in
place or by copy and swap, its rules, their ``CHECK`` constraints, the constraints of rules
whose condition names it and the compound unique indexes that include it still hold; a
rule that cannot hold for the new type is refused up front
(plugins/schema/evolution/carried_rules.py). A dropped field's constraints step aside while
it is dropped and come back with it."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from tests.catalog_state import catalog_mismatches, snapshot
from tests.conftest import Api
from tests.test_rules import add_rule, codes, post

ORDERS = [
    {"name": "region", "type": "string"},
    {
        "name": "qty",
        "type": "float",
        "rules": [{"type": "min", "value": 1}, {"type": "max", "value": 100}],
    },
    {"name": "note", "type": "string", "rules": [{"type": "required_if", "value": "qty > 50"}]},
    {"name": "code", "type": "string", "rules": [{"type": "min_length", "value": 3}]},
]


async def orders(api: Api) -> str:
    await api.create_collection("orders", ORDERS)
    for region, qty in (("eu", 1), ("eu", 2), ("us", 2)):
        await api.create("orders", {"region": region, "qty": qty})
    added = await add_rule(
        api, "orders", {"name": "one_qty_per_region", "unique": ["region", "qty"]}
    )
    assert added.status_code == 201, added.text
    return f'"p_{api.project}".orders'


async def wizard_steps(api: Api, field: str, new_type: str) -> list[tuple[str, dict[str, Any]]]:
    preview = await api.preview(
        "change_field_type", collection="orders", field=field, new_type=new_type
    )
    assert preview.status_code == 200, preview.text
    assert preview.json()["safe"] is False
    return [(step["op"], step["args"]) for step in preview.json()["wizard"]["steps"]]


async def apply_all(api: Api, steps: list[tuple[str, dict[str, Any]]]) -> None:
    for op, args in steps:
        applied = await api.apply(op, **args)
        assert applied.status_code == 200, (op, applied.text)


async def refused_up_front(api: Api, step: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    """The first error of the 422 that both the preview and the apply of ``step`` answer."""
    errors = []
    for attempt in (api.preview, api.apply):
        refused = await attempt(step[0], **step[1])
        assert refused.status_code == 422, refused.text
        errors.append(refused.json()["errors"][0])
    assert errors[0] == errors[1]
    return errors[0]


async def rules_of(api: Api, field: str) -> list[dict[str, Any]]:
    response = await api.client.get(api.url("/collections/orders"), headers=api.headers)
    fields = {f["name"]: f for f in response.json()["fields"]}
    return fields[field]["rules"]


async def test_a_swapped_type_keeps_rules_checks_and_compound_uniqueness(
    api: Api, pg: asyncpg.Connection
) -> None:
    table = await orders(api)
    steps = await wizard_steps(api, "qty", "integer")
    await apply_all(api, steps[:2])
    preview = await api.preview(steps[2][0], **steps[2][1])
    assert preview.status_code == 200, preview.text
    body = preview.json()
    assert any("CHECK (qty >= 1)" in line for line in body["ddl"]), body["ddl"]
    assert any("CREATE UNIQUE INDEX" in line and "(region, qty)" in line for line in body["ddl"])
    assert body["impact"]["rules"]["rules"] == {"qty": ["min", "max"], "note": ["required_if"]}
    assert body["impact"]["rules"]["unique"]["one_qty_per_region"]["groups"] == 0
    await apply_all(api, steps[2:])

    assert [rule["type"] for rule in await rules_of(api, "qty")] == ["min", "max"]
    # Through the API: the rules still refuse what they refused.
    assert codes(await post(api, "orders", {"qty": 0})) == [("qty", "min")]
    assert codes(await post(api, "orders", {"qty": 101, "note": "x"})) == [("qty", "max")]
    assert codes(await post(api, "orders", {"qty": 60})) == [("note", "required_if")]
    created = await post(api, "orders", {"qty": 60, "note": "big"})
    assert created.status_code == 201, created.text
    assert created.json()["qty"] == 60
    # In the database: the CHECK constraints are on the new column.
    for statement in (
        f"INSERT INTO {table} (qty) VALUES (0)",
        f"INSERT INTO {table} (qty, note) VALUES (101, 'x')",
        f"INSERT INTO {table} (qty) VALUES (70)",  # required_if: no note
    ):
        with pytest.raises(asyncpg.CheckViolationError):
            await pg.execute(statement)
    # The compound unique index covers the new column.
    duplicate = await post(api, "orders", {"region": "eu", "qty": 2})
    assert duplicate.status_code == 409, duplicate.text
    assert "region" in duplicate.json()["errors"][0]["message"]
    with pytest.raises(asyncpg.UniqueViolationError):
        await pg.execute(f"INSERT INTO {table} (region, qty) VALUES ('us', 2)")
    # The old field, soft-dropped, keeps no constraint: writes never set it.
    assert await catalog_mismatches(pg, api.project) == []


async def test_a_rule_that_cannot_hold_for_the_new_type_is_refused_up_front(
    api: Api, pg: asyncpg.Connection
) -> None:
    await orders(api)
    await api.create("orders", {"code": "123"})
    preview = await api.preview(
        "change_field_type", collection="orders", field="code", new_type="integer"
    )
    warnings = preview.json()["warnings"]
    assert any("min_length" in w and "swap_fields refuses" in w for w in warnings), warnings
    steps = await wizard_steps(api, "code", "integer")
    await apply_all(api, steps[:2])
    before = await snapshot(pg, api.project)
    error = await refused_up_front(api, steps[2])
    assert error["code"] == "rule_not_applicable"
    assert "min_length" in error["message"] and "set_field_rules" in error["message"]
    assert await snapshot(pg, api.project) == before
    # Once the rule is gone, the swap goes through.
    cleared = await api.apply("set_field_rules", collection="orders", field="code", rules=[])
    assert cleared.status_code == 200, cleared.text
    await apply_all(api, steps[2:])


async def test_a_swap_is_refused_while_converted_values_collide(
    api: Api, pg: asyncpg.Connection
) -> None:
    table = await orders(api)
    steps = await wizard_steps(api, "qty", "integer")
    await apply_all(api, steps[:2])
    temporary = steps[2][1]["replacement"]
    # Values that collide once they are the field's: eu/2 twice.
    await pg.execute(f"UPDATE {table} SET {temporary} = 2 WHERE region = 'eu'")
    preview = await api.preview(steps[2][0], **steps[2][1])
    unique = preview.json()["impact"]["rules"]["unique"]["one_qty_per_region"]
    assert (unique["groups"], unique["rows"]) == (1, 2)
    before = await snapshot(pg, api.project)
    refused = await api.apply(steps[2][0], **steps[2][1])
    assert refused.status_code == 409, refused.text
    assert refused.json()["errors"][0]["code"] == "duplicates_exist"
    assert await snapshot(pg, api.project) == before
    # And values that break a rule.
    await pg.execute(f"UPDATE {table} SET {temporary} = 500 WHERE region = 'us'")
    await pg.execute(f"UPDATE {table} SET {temporary} = 1 WHERE qty = 1")
    refused = await api.apply(steps[2][0], **steps[2][1])
    assert refused.status_code == 409, refused.text
    assert refused.json()["errors"][0]["code"] == "existing_records_break_rule"
    assert await snapshot(pg, api.project) == before


async def test_an_in_place_type_change_binds_the_rules_again(
    api: Api, pg: asyncpg.Connection
) -> None:
    await api.create_collection(
        "items",
        [
            {"name": "qty", "type": "integer", "rules": [{"type": "min", "value": 1}]},
            {"name": "label", "type": "string", "rules": [{"type": "max_length", "value": 4}]},
        ],
    )
    for field, new_type in (("qty", "float"), ("label", "text")):
        applied = await api.apply(
            "change_field_type", collection="items", field=field, new_type=new_type
        )
        assert applied.status_code == 200, applied.text
        assert any("CHECK" in line for line in applied.json()["ddl"]), applied.json()["ddl"]
    response = await api.client.post(
        api.url("/collections/items/records"),
        json={"qty": 0.5, "label": "toolong"},
        headers=api.headers,
    )
    assert codes(response) == [("qty", "min"), ("label", "max_length")]
    table = f'"p_{api.project}".items'
    for statement in (
        f"INSERT INTO {table} (qty) VALUES (0.5)",
        f"INSERT INTO {table} (label) VALUES ('toolong')",
    ):
        with pytest.raises(asyncpg.CheckViolationError):
            await pg.execute(statement)


async def test_a_type_change_needs_schema_write(api: Api) -> None:
    await orders(api)
    steps = await wizard_steps(api, "qty", "integer")
    await apply_all(api, steps[:2])
    writer = await api.key(["records:read", "records:write"])
    refused = await api.client.post(
        api.url("/schema/apply"), json={"op": steps[2][0], "args": steps[2][1]}, headers=writer
    )
    assert refused.status_code == 403, refused.text
    assert [rule["type"] for rule in await rules_of(api, "qty")] == ["min", "max"]


async def test_a_dropped_field_s_rules_step_aside_and_come_back_with_it(
    api: Api, pg: asyncpg.Connection
) -> None:
    await orders(api)
    table = f'"p_{api.project}".orders'
    dropped = await api.apply("drop_field", collection="orders", field="note")
    assert dropped.status_code == 200, dropped.text
    assert any("not enforced while it is dropped" in w for w in dropped.json()["warnings"])
    # Writes leave the dropped field empty: its required_if constraint must not refuse them.
    created = await post(api, "orders", {"region": "asia", "qty": 60})
    assert created.status_code == 201, created.text
    preview = await api.preview("restore_field", collection="orders", field="note")
    assert preview.status_code == 200, preview.text
    assert any("NOT VALID" in line for line in preview.json()["ddl"]), preview.json()["ddl"]
    assert preview.json()["impact"]["constraints"] == [
        {"rule": "required_if", "constraint": "rule_note_required_if", "rows": 1}
    ]
    restored = await api.apply("restore_field", collection="orders", field="note")
    assert restored.status_code == 200, restored.text
    # From now on the rule binds every writer again.
    assert codes(await post(api, "orders", {"qty": 70})) == [("note", "required_if")]
    with pytest.raises(asyncpg.CheckViolationError):
        await pg.execute(f"INSERT INTO {table} (qty) VALUES (70)")
    assert [rule["type"] for rule in await rules_of(api, "note")] == ["required_if"]


async def record_rules(api: Api) -> dict[str, dict[str, Any]]:
    response = await api.client.get(api.url("/collections/orders/rules"), headers=api.headers)
    assert response.status_code == 200, response.text
    return {rule["name"]: rule for rule in response.json()["data"]}


async def test_a_record_rule_condition_that_no_longer_type_checks_refuses_the_change(
    api: Api, pg: asyncpg.Connection
) -> None:
    await orders(api)
    eu_rule = {"name": "eu_needs_code", "when": "region = 'eu'", "require": ["code"]}
    assert (await add_rule(api, "orders", eu_rule)).status_code == 201
    preview = await api.preview(
        "change_field_type", collection="orders", field="region", new_type="integer"
    )
    warnings = preview.json()["warnings"]
    assert any("eu_needs_code" in w and "swap_fields refuses" in w for w in warnings), warnings
    await pg.execute(f'UPDATE "p_{api.project}".orders SET region = NULL')
    steps = await wizard_steps(api, "region", "integer")
    await apply_all(api, steps[:2])
    before = await snapshot(pg, api.project)
    error = await refused_up_front(api, steps[2])
    assert (error["code"], error["field"]) == (
        "rule_not_applicable",
        "record_rules.eu_needs_code.when",
    )
    assert "'eu_needs_code'" in error["message"] and "drop_record_rule" in error["message"]
    assert await snapshot(pg, api.project) == before
    dropped = await api.client.delete(
        api.url("/collections/orders/rules/eu_needs_code"), headers=api.headers
    )
    assert dropped.status_code in (200, 204), dropped.text
    await apply_all(api, steps[2:])


async def test_a_swap_moves_record_rules_naming_the_replacement_to_the_field_s_name(
    api: Api, pg: asyncpg.Connection
) -> None:
    await orders(api)
    steps = await wizard_steps(api, "qty", "integer")
    await apply_all(api, steps[:2])
    temporary = steps[2][1]["replacement"]
    for rule in (
        {"name": "one_new_qty", "unique": ["code", temporary]},
        {"name": "big_needs_note", "when": f"{temporary} > 50", "require": [temporary, "note"]},
    ):
        added = await add_rule(api, "orders", rule)
        assert added.status_code == 201, added.text
    both = {"name": "both_qty", "unique": ["code", "qty", temporary]}
    assert (await add_rule(api, "orders", both)).status_code == 201
    refused = await api.apply(steps[2][0], **steps[2][1])
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"][0]["field"] == "record_rules.both_qty.unique"
    gone = await api.client.delete(
        api.url("/collections/orders/rules/both_qty"), headers=api.headers
    )
    assert gone.status_code in (200, 204), gone.text

    await apply_all(api, steps[2:])
    rules = await record_rules(api)
    assert rules["one_new_qty"]["unique"] == ["code", "qty"]
    assert rules["big_needs_note"]["when"] == "qty > 50"
    assert rules["big_needs_note"]["require"] == ["qty", "note"]
    assert rules["one_qty_per_region"]["unique"] == ["region", "qty"]
    assert await catalog_mismatches(pg, api.project) == []
    # The rules still work on the field under its name.
    assert codes(await post(api, "orders", {"qty": 60, "code": "abc"})) == [
        ("note", "required_if"),
        ("note", "big_needs_note"),
    ]
    assert (await post(api, "orders", {"qty": 7, "code": "xyz"})).status_code == 201
    duplicate = await post(api, "orders", {"qty": 7, "code": "xyz", "region": "ap"})
    assert duplicate.status_code == 409, duplicate.text
    # Later ops find the fields the rules name.
    dropped = await api.apply("drop_unique", collection="orders", fields=["code", "qty"])
    assert dropped.status_code == 200, dropped.text
