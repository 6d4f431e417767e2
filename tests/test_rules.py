"""Validation rules (issue 18): field rules, record rules, compound uniqueness and CHECK
constraints, enforced on every write and reported all at once (``rules.core``)."""

from __future__ import annotations

import html
import re
import time
from typing import Any

import asyncpg
import orjson
import pytest

from tests.conftest import Api
from tests.test_admin import admin_cookie
from tests.test_schema_evolution import set_settings

INVOICES = [
    {
        "name": "code",
        "type": "string",
        "rules": [
            {"type": "min_length", "value": 3},
            {"type": "max_length", "value": 5},
            {"type": "pattern", "value": "^[A-Z]+$"},
        ],
    },
    {
        "name": "amount",
        "type": "integer",
        "rules": [{"type": "min", "value": 1}, {"type": "max", "value": 100}],
    },
    {"name": "status", "type": "string", "rules": [{"type": "enum", "value": ["draft", "paid"]}]},
    {
        "name": "invoice_no",
        "type": "string",
        "rules": [{"type": "required_if", "value": "status = 'paid'"}],
    },
    {"name": "note", "type": "text"},
]


async def invoices(api: Api) -> str:
    await api.create_collection("invoices", INVOICES)
    return "invoices"


async def post(api: Api, collection: str, record: Any, headers: dict[str, str] | None = None):
    return await api.client.post(
        api.url(f"/collections/{collection}/records"), json=record, headers=headers or api.headers
    )


async def patch(api: Api, collection: str, record_id: int, record: Any):
    return await api.client.patch(
        api.url(f"/collections/{collection}/records/{record_id}"), json=record, headers=api.headers
    )


async def validate(api: Api, collection: str, record: Any) -> dict[str, Any]:
    response = await api.client.post(
        api.url(f"/collections/{collection}/validate"), json={"record": record}, headers=api.headers
    )
    assert response.status_code == 200, response.text
    return response.json()


def codes(response: Any) -> list[tuple[str | None, str]]:
    assert response.status_code == 422, response.text
    return [(item["field"], item["code"]) for item in response.json()["errors"]]


async def count(pg: asyncpg.Connection, api: Api, table: str) -> int:
    return await pg.fetchval(f'SELECT count(*) FROM "p_{api.project}"."{table}"')


# -- field rules ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("record", "field", "code"),
    [
        ({"code": "AB"}, "code", "min_length"),
        ({"code": "ABCDEF"}, "code", "max_length"),
        ({"code": "abc"}, "code", "pattern"),
        ({"amount": 0}, "amount", "min"),
        ({"amount": 101}, "amount", "max"),
        ({"status": "void"}, "status", "enum"),
        ({"status": "paid"}, "invoice_no", "required_if"),
    ],
)
async def test_each_rule_type_refuses_a_breaking_value(
    api: Api, record: dict[str, Any], field: str, code: str
) -> None:
    await invoices(api)
    response = await post(api, "invoices", record)
    assert codes(response) == [(field, code)]
    assert field in response.json()["errors"][0]["message"]


async def test_bounds_are_inclusive(api: Api) -> None:
    await invoices(api)
    for record in (
        {"code": "ABC", "amount": 1},
        {"code": "ABCDE", "amount": 100},
        {"status": "paid", "invoice_no": "F-1"},
        {"status": "draft"},
    ):
        response = await post(api, "invoices", record)
        assert response.status_code == 201, (record, response.text)


async def test_absent_and_null_optional_fields_skip_their_rules(api: Api) -> None:
    await invoices(api)
    assert (await post(api, "invoices", {})).status_code == 201
    response = await post(api, "invoices", {"code": None, "amount": None, "status": None})
    assert response.status_code == 201, response.text


async def test_every_broken_rule_is_reported_at_once_in_a_fixed_order(
    api: Api, pg: asyncpg.Connection
) -> None:
    await invoices(api)
    record = {"status": "paid", "amount": 500, "code": "ab"}
    first = await post(api, "invoices", record)
    assert codes(first) == [
        ("code", "min_length"),
        ("code", "pattern"),
        ("amount", "max"),
        ("invoice_no", "required_if"),
    ]
    again = await post(api, "invoices", dict(reversed(record.items())))
    assert again.json() == first.json()
    assert await count(pg, api, "invoices") == 0


async def test_patch_checks_the_merged_record(api: Api, pg: asyncpg.Connection) -> None:
    await invoices(api)
    created = await api.create("invoices", {"status": "draft", "code": "ABC"})
    refused = await patch(api, "invoices", created["id"], {"status": "paid"})
    assert codes(refused) == [("invoice_no", "required_if")]
    stored = await pg.fetchval(
        f'SELECT status FROM "p_{api.project}".invoices WHERE id = $1', created["id"]
    )
    assert stored == "draft"
    accepted = await patch(api, "invoices", created["id"], {"status": "paid", "invoice_no": "F"})
    assert accepted.status_code == 200, accepted.text
    # The stored invoice_no now satisfies required_if: clearing it breaks the rule again.
    cleared = await patch(api, "invoices", created["id"], {"invoice_no": None})
    assert codes(cleared) == [("invoice_no", "required_if")]


async def test_validate_gives_the_errors_of_a_real_write_and_writes_nothing(
    api: Api, pg: asyncpg.Connection
) -> None:
    await invoices(api)
    record = {"status": "void", "amount": 0, "code": "toolong"}
    tried = await validate(api, "invoices", record)
    written = await post(api, "invoices", record)
    assert tried == {"valid": False, "errors": written.json()["errors"]}
    assert await validate(api, "invoices", {"code": "ABC"}) == {"valid": True, "errors": []}
    assert await count(pg, api, "invoices") == 0


async def test_rules_bind_an_api_key_as_they_bind_an_admin(api: Api) -> None:
    await invoices(api)
    await api.set_policies("invoices", create="", read="")
    key = await api.key(["records:read", "records:write"])
    response = await post(api, "invoices", {"amount": 0}, headers=key)
    assert codes(response) == [("amount", "min")]
    assert (await post(api, "invoices", {"amount": 5}, headers=key)).status_code == 201


async def test_rules_appear_in_the_catalog(api: Api) -> None:
    await invoices(api)
    response = await api.client.get(api.url("/collections/invoices"), headers=api.headers)
    fields = {field["name"]: field for field in response.json()["fields"]}
    assert fields["amount"]["rules"] == [{"type": "min", "value": 1}, {"type": "max", "value": 100}]
    assert fields["note"]["rules"] == []


# -- invalid definitions ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "field_type", "needle"),
    [
        ({"type": "pattern", "value": "(unclosed"}, "string", "not a valid pattern"),
        ({"type": "pattern", "value": "(a)\\1"}, "string", "not a valid pattern"),
        ({"type": "pattern", "value": "a" * 1001}, "string", "1000"),
        ({"type": "required_if", "value": "nope = 1"}, "string", "unknown field 'nope'"),
        ({"type": "required_if", "value": "lower(status) = 'x'"}, "string", "unexpected '('"),
        ({"type": "required_if", "value": "@auth.id = 1"}, "string", "@auth.id"),
        ({"type": "min_length", "value": -1}, "string", "greater than or equal"),
        ({"type": "min_length", "value": 3}, "integer", "does not apply"),
        ({"type": "enum", "value": ["x"]}, "integer", "allowed value"),
        ({"type": "no_such_rule", "value": 1}, "string", "unknown rule type"),
    ],
)
async def test_an_invalid_rule_is_refused_when_defined(
    api: Api, rule: dict[str, Any], field_type: str, needle: str
) -> None:
    fields = [
        {"name": "status", "type": "string"},
        {"name": "x", "type": field_type, "rules": [rule]},
    ]
    response = await api.client.post(
        api.url("/collections"), json={"name": "things", "fields": fields}, headers=api.headers
    )
    assert response.status_code == 422, response.text
    (error,) = response.json()["errors"]
    assert error["field"] == "fields[1].rules[0]"
    assert error["code"] == "invalid_rule"
    assert needle in error["message"]


async def test_a_catastrophic_backtracking_pattern_runs_in_linear_time(api: Api) -> None:
    await api.create_collection(
        "words", [{"name": "w", "type": "text", "rules": [{"type": "pattern", "value": "(a+)+$"}]}]
    )
    started = time.perf_counter()
    response = await post(api, "words", {"w": "a" * 50_000 + "!"})
    assert time.perf_counter() - started < 2
    assert codes(response) == [("w", "pattern")]


# -- set_field_rules and CHECK constraints --------------------------------------------------------


async def test_set_field_rules_previews_its_check_and_counts_breaking_records(
    api: Api, pg: asyncpg.Connection
) -> None:
    await api.create_collection("items", [{"name": "qty", "type": "integer"}])
    for qty in (0, 5, 50):
        await api.create("items", {"qty": qty})
    rules = [{"type": "min", "value": 1}, {"type": "max", "value": 10}]
    preview = await api.preview("set_field_rules", collection="items", field="qty", rules=rules)
    assert preview.status_code == 200, preview.text
    body = preview.json()
    assert any("CHECK (qty >= 1)" in line for line in body["ddl"]), body["ddl"]
    assert [(c["rule"], c["rows"]) for c in body["impact"]["constraints"]] == [
        ("min", 1),
        ("max", 1),
    ]
    refused = await api.apply("set_field_rules", collection="items", field="qty", rules=rules)
    assert refused.status_code == 409, refused.text
    assert refused.json()["errors"][0]["code"] == "existing_records_break_rule"
    await pg.execute(f'DELETE FROM "p_{api.project}".items WHERE qty NOT BETWEEN 1 AND 10')
    applied = await api.apply("set_field_rules", collection="items", field="qty", rules=rules)
    assert applied.status_code == 200, applied.text
    assert codes(await post(api, "items", {"qty": 11})) == [("qty", "max")]
    history = await api.client.get(api.url("/schema/ops"), headers=api.headers)
    statuses = [(op["op"], op["status"]) for op in history.json()["data"]]
    assert ("set_field_rules", "applied") in statuses
    assert ("set_field_rules", "failed") in statuses


async def test_a_check_constraint_holds_against_a_direct_sql_insert(
    api: Api, pg: asyncpg.Connection
) -> None:
    await invoices(api)
    table = f'"p_{api.project}".invoices'
    for column, value in (
        ("amount", 0),
        ("code", "TOOLONG"),
        ("status", "void"),
        ("status", "paid"),  # required_if: paid without an invoice_no
    ):
        with pytest.raises(asyncpg.CheckViolationError):
            await pg.execute(f"INSERT INTO {table} ({column}) VALUES ($1)", value)
    await pg.execute(f"INSERT INTO {table} (status, invoice_no) VALUES ('paid', 'F-1')")
    # A pattern has no exact database form (RE2 is not PostgreSQL's regex): no CHECK for it.
    await pg.execute(f"INSERT INTO {table} (code) VALUES ('abc')")


async def test_add_field_counts_the_records_its_rules_would_break(api: Api) -> None:
    await api.create_collection("orders", [{"name": "status", "type": "string"}])
    for status in ("paid", "paid", "draft"):
        await api.create("orders", {"status": status})
    field = {
        "name": "invoice_no",
        "type": "string",
        "rules": [{"type": "required_if", "value": "status = 'paid'"}],
    }
    preview = await api.preview("add_field", collection="orders", field=field)
    assert preview.status_code == 200, preview.text
    constraints = preview.json()["impact"]["constraints"]
    assert [(c["rule"], c["rows"]) for c in constraints] == [("required_if", 2)]
    refused = await api.apply("add_field", collection="orders", field=field)
    assert refused.status_code == 409, refused.text
    assert refused.json()["errors"][0]["code"] == "existing_records_break_rule"
    with_default = {**field, "default": "F-0"}
    applied = await api.apply("add_field", collection="orders", field=with_default)
    assert applied.status_code == 200, applied.text


async def test_replacing_rules_drops_the_old_checks(api: Api, pg: asyncpg.Connection) -> None:
    await invoices(api)
    applied = await api.apply("set_field_rules", collection="invoices", field="amount", rules=[])
    assert applied.status_code == 200, applied.text
    await pg.execute(f'INSERT INTO "p_{api.project}".invoices (amount) VALUES (1000)')
    assert (await post(api, "invoices", {"amount": 1000})).status_code == 201


# -- record rules -------------------------------------------------------------------------------


async def add_rule(api: Api, collection: str, rule: dict[str, Any], headers=None):
    return await api.client.post(
        api.url(f"/collections/{collection}/rules"), json=rule, headers=headers or api.headers
    )


async def test_record_rules_and_field_rules_are_reported_together(api: Api) -> None:
    await invoices(api)
    rule = {"name": "paid_needs_note", "when": "status = 'paid'", "require": ["note"]}
    added = await add_rule(api, "invoices", rule)
    assert added.status_code == 201, added.text
    assert added.json() == {**rule}
    checked = {"name": "big_needs_code", "when": "amount > 50", "check": "code is not null"}
    assert (await add_rule(api, "invoices", checked)).status_code == 201
    response = await post(api, "invoices", {"status": "paid", "amount": 60})
    assert codes(response) == [
        ("invoice_no", "required_if"),
        ("note", "paid_needs_note"),
        (None, "big_needs_code"),
    ]
    ok = {"status": "paid", "amount": 60, "invoice_no": "F", "note": "n", "code": "ABC"}
    created = await post(api, "invoices", ok)
    assert created.status_code == 201, created.text
    refused = await patch(api, "invoices", created.json()["id"], {"note": None})
    assert codes(refused) == [("note", "paid_needs_note")]


async def test_record_rules_are_listed_deleted_and_audited(api: Api) -> None:
    await invoices(api)
    rule = {"name": "paid_needs_note", "when": "status = 'paid'", "require": ["note"]}
    await add_rule(api, "invoices", rule)
    listed = await api.client.get(api.url("/collections/invoices/rules"), headers=api.headers)
    assert listed.json() == {"data": [rule]}
    deleted = await api.client.delete(
        api.url("/collections/invoices/rules/paid_needs_note"), headers=api.headers
    )
    assert deleted.status_code == 204, deleted.text
    assert (await post(api, "invoices", {"status": "paid", "invoice_no": "F"})).status_code == 201
    missing = await api.client.delete(
        api.url("/collections/invoices/rules/paid_needs_note"), headers=api.headers
    )
    assert missing.status_code == 404
    audit = await api.client.get(api.url("/audit"), headers=api.headers)
    actions = [event["action"] for event in audit.json()["data"]]
    assert "schema.add_record_rule" in actions
    assert "schema.drop_record_rule" in actions


@pytest.mark.parametrize(
    ("rule", "field"),
    [
        ({"name": "r", "when": "nope = 1", "require": ["note"]}, "rule.when"),
        ({"name": "r", "when": "status = 'x'", "require": ["nope"]}, "rule.require[0]"),
        ({"name": "r", "check": "@now > created_at"}, "rule.check"),
        ({"name": "r", "when": "status = 'x'"}, "rule"),
    ],
)
async def test_an_invalid_record_rule_is_refused(
    api: Api, rule: dict[str, Any], field: str
) -> None:
    await invoices(api)
    response = await add_rule(api, "invoices", rule)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == field


async def test_record_rules_need_schema_write(api: Api) -> None:
    await invoices(api)
    key = await api.key(["records:read", "records:write"])
    rule = {"name": "r", "when": "status = 'paid'", "require": ["note"]}
    assert (await add_rule(api, "invoices", rule, headers=key)).status_code == 403
    schema_key = await api.key(["schema:write"])
    assert (await add_rule(api, "invoices", rule, headers=schema_key)).status_code == 201


async def test_renaming_a_field_rewrites_the_rules_that_name_it(api: Api) -> None:
    await invoices(api)
    await add_rule(api, "invoices", {"name": "r", "when": "status = 'paid'", "require": ["note"]})
    renamed = await api.apply(
        "rename_field", collection="invoices", field="status", new_name="state", grace_days=0
    )
    assert renamed.status_code == 200, renamed.text
    described = (await api.client.get(api.url("/collections/invoices"), headers=api.headers)).json()
    fields = {field["name"]: field for field in described["fields"]}
    assert fields["invoice_no"]["rules"] == [{"type": "required_if", "value": "state = 'paid'"}]
    assert described["rules"] == [{"name": "r", "when": "state = 'paid'", "require": ["note"]}]
    response = await post(api, "invoices", {"state": "paid"})
    assert codes(response) == [("invoice_no", "required_if"), ("note", "r")]


async def test_purging_a_field_a_rule_names_is_refused(api: Api) -> None:
    await invoices(api)
    await set_settings(api, purge_retention_days=0)
    dropped = await api.apply("drop_field", collection="invoices", field="status")
    assert dropped.status_code == 200, dropped.text
    purge = await api.apply(
        "purge_field", collection="invoices", field="status", confirm="invoices.status"
    )
    assert purge.status_code == 409, purge.text
    assert "required_if" in purge.text


async def test_a_field_with_rules_of_its_own_can_be_purged(api: Api) -> None:
    await invoices(api)
    await set_settings(api, purge_retention_days=0)
    assert (await api.apply("drop_field", collection="invoices", field="amount")).status_code == 200
    purged = await api.apply(
        "purge_field", collection="invoices", field="amount", confirm="invoices.amount"
    )
    assert purged.status_code == 200, purged.text


# -- compound uniqueness ------------------------------------------------------------------------


async def test_add_unique_refuses_new_duplicates_with_a_409_naming_the_fields(api: Api) -> None:
    await api.create_collection(
        "tickets", [{"name": "region", "type": "string"}, {"name": "number", "type": "integer"}]
    )
    applied = await api.apply("add_unique", collection="tickets", fields=["region", "number"])
    assert applied.status_code == 200, applied.text
    await api.create("tickets", {"region": "eu", "number": 1})
    await api.create("tickets", {"region": "us", "number": 1})
    await api.create("tickets", {"region": "eu", "number": None})
    await api.create("tickets", {"region": "eu", "number": None})
    response = await post(api, "tickets", {"region": "eu", "number": 1})
    assert response.status_code == 409, response.text
    message = response.json()["errors"][0]["message"]
    assert "region" in message and "number" in message
    rules = await api.client.get(api.url("/collections/tickets/rules"), headers=api.headers)
    assert rules.json()["data"] == [
        {"name": "unique_region_number", "unique": ["region", "number"]}
    ]
    dropped = await api.apply("drop_unique", collection="tickets", fields=["region", "number"])
    assert dropped.status_code == 200, dropped.text
    assert (await post(api, "tickets", {"region": "eu", "number": 1})).status_code == 201


async def test_add_unique_on_existing_duplicates_previews_them_and_refuses(
    api: Api, pg: asyncpg.Connection
) -> None:
    await api.create_collection(
        "tickets", [{"name": "region", "type": "string"}, {"name": "number", "type": "integer"}]
    )
    for region, number in (("eu", 1), ("eu", 1), ("eu", 1), ("us", 2), ("us", 2), ("us", 3)):
        await api.create("tickets", {"region": region, "number": number})
    preview = await api.preview("add_unique", collection="tickets", fields=["region", "number"])
    assert preview.status_code == 200, preview.text
    body = preview.json()
    assert any("CREATE UNIQUE INDEX" in line for line in body["ddl"]), body["ddl"]
    duplicates = body["impact"]["duplicates"]
    assert duplicates["groups"] == 2 and duplicates["rows"] == 5
    assert duplicates["sample"][0] == {"values": {"region": "eu", "number": 1}, "count": 3}
    refused = await api.apply("add_unique", collection="tickets", fields=["region", "number"])
    assert refused.status_code == 409, refused.text
    assert refused.json()["errors"][0]["code"] == "duplicates_exist"
    indexes = await pg.fetchval(
        "SELECT count(*) FROM pg_indexes WHERE schemaname = $1 AND tablename = 'tickets'",
        f"p_{api.project}",
    )
    assert indexes == 1  # the primary key only
    by_rule = {"name": "one_ticket", "unique": ["region", "number"]}
    await pg.execute(
        f'DELETE FROM "p_{api.project}".tickets a USING "p_{api.project}".tickets b '
        "WHERE a.id > b.id AND a.region = b.region AND a.number = b.number"
    )
    assert (await add_rule(api, "tickets", by_rule)).status_code == 201


# -- the admin ----------------------------------------------------------------------------------


async def admin_form(
    api: Api, admin_headers: dict[str, str], path: str, data: dict[str, str], page: str = "rules"
):
    """POST a form under an admin page of invoices (``rules`` by default), with the page's
    CSRF token."""
    cookie = admin_cookie(admin_headers)
    base = f"/admin/p/{api.project}/c/invoices/{page}"
    shown = await api.client.get(base, headers=cookie)
    assert shown.status_code == 200, shown.text
    token = re.search(r'name="csrf" value="([^"]+)"', shown.text)
    assert token is not None
    return await api.client.post(
        f"{base}{path}", data={**data, "csrf": token.group(1)}, headers=cookie
    )


async def test_the_admin_record_form_shows_broken_rules_beside_their_fields(
    api: Api, admin_headers: dict[str, str], pg: asyncpg.Connection
) -> None:
    await invoices(api)
    form = {"v.amount": "0", "v.status": "paid"}
    refused = await admin_form(api, admin_headers, "", form, page="records/new")
    assert refused.status_code == 422, refused.text
    amount = re.search(r'id="f-v-amount-error">([^<]*)<', refused.text)
    invoice = re.search(r'id="f-v-invoice_no-error">([^<]*)<', refused.text)
    assert amount is not None and amount.group(1) == "amount must be at least 1"
    assert invoice is not None and "invoice_no is required when status" in invoice.group(1)
    assert await count(pg, api, "invoices") == 0


async def test_the_admin_try_panel_shows_the_errors_of_a_write_and_writes_nothing(
    api: Api, admin_headers: dict[str, str], pg: asyncpg.Connection
) -> None:
    await invoices(api)
    tried = await admin_form(
        api, admin_headers, "/try", {"payload": '{"amount": 0, "status": "paid"}'}
    )
    assert tried.status_code == 200, tried.text
    assert 'data-try-result="invalid"' in tried.text
    assert "min: amount must be at least 1" in tried.text
    assert "required_if: invoice_no is required when status = &#39;paid&#39;" in tried.text
    good = await admin_form(api, admin_headers, "/try", {"payload": '{"amount": 5}'})
    assert 'data-try-result="valid"' in good.text
    assert await count(pg, api, "invoices") == 0


async def test_the_admin_edits_field_rules_and_record_rules(
    api: Api, admin_headers: dict[str, str]
) -> None:
    await invoices(api)
    saved = await admin_form(
        api, admin_headers, "/field/note", {"rules.note": '[{"type": "max_length", "value": 3}]'}
    )
    assert saved.status_code == 303, saved.text
    assert codes(await post(api, "invoices", {"note": "long"})) == [("note", "max_length")]
    bad = await admin_form(
        api, admin_headers, "/field/note", {"rules.note": '[{"type": "pattern", "value": "("}]'}
    )
    assert bad.status_code == 422
    assert "not a valid pattern" in bad.text
    added = await admin_form(
        api,
        admin_headers,
        "/record",
        {"rule_name": "paid_note", "when": "status = 'paid'", "require": "note", "check": ""},
    )
    assert added.status_code == 303, added.text
    response = await post(api, "invoices", {"status": "paid", "invoice_no": "F"})
    assert codes(response) == [("note", "paid_note")]
    removed = await admin_form(api, admin_headers, "/record/paid_note/delete", {})
    assert removed.status_code == 303, removed.text
    assert (await post(api, "invoices", {"status": "paid", "invoice_no": "F"})).status_code == 201


async def test_the_admin_edits_required_if_in_its_own_box_with_the_condition_builder(
    api: Api, admin_headers: dict[str, str]
) -> None:
    await invoices(api)
    shown = await api.client.get(
        f"/admin/p/{api.project}/c/invoices/rules", headers=admin_cookie(admin_headers)
    )
    # The stored required_if is in its box, read back into a row; the list keeps the rest.
    page = html.unescape(shown.text)
    box = re.search(r'<input id="f-required_if-invoice_no" [^>]*value="([^"]*)"', page)
    assert box is not None and box.group(1) == "status = 'paid'"
    rows = re.search(r'data-target="f-required_if-invoice_no" data-rows="(\{.*?\})"', shown.text)
    assert rows is not None
    assert orjson.loads(html.unescape(rows.group(1))) == {
        "join": "and",
        "rows": [{"field": "status", "op": "eq", "value": "paid"}],
    }
    listed = re.search(r'<textarea id="f-rules-invoice_no"[^>]*>([^<]*)<', shown.text)
    assert listed is not None and orjson.loads(html.unescape(listed.group(1))) == []
    saved = await admin_form(
        api,
        admin_headers,
        "/field/note",
        {"rules.note": "[]", "required_if.note": "amount >= 50 or status = 'paid'"},
    )
    assert saved.status_code == 303, saved.text
    response = await post(api, "invoices", {"amount": 60})
    assert codes(response) == [("note", "required_if")]
    assert (await post(api, "invoices", {"amount": 60, "note": "big"})).status_code == 201
    for broken, message in (("amount >", "expected a value"), ("total = 1", "total")):
        refused = await admin_form(
            api, admin_headers, "/field/note", {"rules.note": "[]", "required_if.note": broken}
        )
        assert refused.status_code == 422
        assert message in refused.text
    described = await api.client.get(api.url("/collections/invoices"), headers=api.headers)
    note = next(f for f in described.json()["fields"] if f["name"] == "note")
    assert note["rules"] == [{"type": "required_if", "value": "amount >= 50 or status = 'paid'"}]
