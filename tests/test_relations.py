"""Relations (issue 16): a ``relation`` field under a real foreign key, referential actions
enforced by PostgreSQL, links written by id, one-hop includes that obey the target's
policies, and schema changes that keep all of it working."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import asyncpg
import httpx
import pytest
from alembic.operations import Operations

from admin.forms import option_inputs
from kernel.config import Settings
from kernel.fields import FieldType
from kernel.plugins import load_plugins
from kernel.registry import Registry
from kernel.testing import FieldTypeContract
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Api, running, unique_id
from tests.test_admin import admin_cookie
from tests.test_records import events_of


def relation(name: str, target: str, **options: Any) -> dict[str, Any]:
    extra = {key: options.pop(key) for key in ("required",) if key in options}
    return {"name": name, "type": "relation", "options": {"target": target, **options}, **extra}


async def shop(api: Api, on_delete: str = "restrict", **options: Any) -> None:
    """customers(name) ← orders(title, customer)."""
    await api.create_collection("customers", [{"name": "name", "type": "string"}])
    await api.create_collection(
        "orders",
        [
            {"name": "title", "type": "string"},
            relation("customer", "customers", on_delete=on_delete, **options),
        ],
    )


def records(api: Api, collection: str, record_id: int | None = None) -> str:
    path = f"/collections/{collection}/records"
    return api.url(path if record_id is None else f"{path}/{record_id}")


async def get(api: Api, url: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return await api.client.get(url, headers=headers or api.headers)


async def post_collection(api: Api, name: str, fields: list[dict[str, Any]]) -> httpx.Response:
    return await api.client.post(
        api.url("/collections"), json={"name": name, "fields": fields}, headers=api.headers
    )


async def new_project(client: httpx.AsyncClient, headers: dict[str, str]) -> Api:
    api = Api(client, headers, unique_id())
    created = await client.post(
        "/api/projects", json={"id": api.project, "name": "p"}, headers=headers
    )
    assert created.status_code == 201, created.text
    return api


def error(response: httpx.Response) -> dict[str, Any]:
    return response.json()["errors"][0]


async def foreign_keys(pg: asyncpg.Connection, project: str) -> list[dict[str, Any]]:
    rows = await pg.fetch(
        """
        SELECT tc.table_name, kcu.column_name, ccu.table_name AS target, rc.delete_rule
        FROM information_schema.table_constraints tc
        JOIN information_schema.key_column_usage kcu
          ON kcu.constraint_name = tc.constraint_name AND kcu.table_schema = tc.table_schema
        JOIN information_schema.constraint_column_usage ccu
          ON ccu.constraint_name = tc.constraint_name AND ccu.table_schema = tc.table_schema
        JOIN information_schema.referential_constraints rc
          ON rc.constraint_name = tc.constraint_name AND rc.constraint_schema = tc.table_schema
        WHERE tc.table_schema = $1 AND tc.constraint_type = 'FOREIGN KEY'
        ORDER BY tc.table_name, kcu.column_name
        """,
        f"p_{project}",
    )
    return [dict(row) for row in rows]


# -- the field type and its DDL -------------------------------------------------------------


async def test_a_relation_is_a_real_foreign_key_with_an_index(
    api: Api, pg: asyncpg.Connection
) -> None:
    await shop(api)
    assert await foreign_keys(pg, api.project) == [
        {
            "table_name": "orders",
            "column_name": "customer_id",
            "target": "customers",
            "delete_rule": "RESTRICT",
        }
    ]
    indexed = await pg.fetchval(
        "SELECT count(*) FROM pg_indexes WHERE schemaname = $1 AND tablename = 'orders' "
        "AND indexdef LIKE '%(customer_id)%'",
        f"p_{api.project}",
    )
    assert indexed == 1
    described = (await get(api, api.url("/collections/orders"))).json()
    field = next(f for f in described["fields"] if f["name"] == "customer")
    assert field["column"] == "customer_id"
    assert field["options"] == {
        "target": "customers",
        "on_delete": "restrict",
        "display_field": None,
        "reverse": None,
    }


async def test_the_preview_shows_the_foreign_key_and_index_ddl(api: Api) -> None:
    await api.create_collection("customers", [{"name": "name", "type": "string"}])
    await api.create_collection("orders", [{"name": "title", "type": "string"}])
    response = await api.preview(
        "add_field",
        collection="orders",
        field=relation("customer", "customers", on_delete="cascade"),
    )
    assert response.status_code == 200, response.text
    ddl = response.json()["ddl"]
    assert any(
        "FOREIGN KEY (customer_id) REFERENCES" in line and "ON DELETE CASCADE" in line
        for line in ddl
    ), ddl
    assert any(line.startswith("CREATE INDEX ON") for line in ddl), ddl


async def test_a_target_must_be_a_collection_of_the_same_project(
    api: Api, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    other = await new_project(client, admin_headers)
    await other.create_collection("customers", [{"name": "name", "type": "string"}])
    response = await post_collection(api, "orders", [relation("customer", "customers")])
    assert response.status_code == 422
    assert error(response)["field"] == "fields[0].options.target"
    assert error(response)["code"] == "unknown_target"
    assert (await get(api, api.url("/collections/orders"))).status_code == 404


async def test_set_null_needs_an_optional_field(api: Api) -> None:
    await api.create_collection("customers", [{"name": "name", "type": "string"}])
    response = await api.apply(
        "add_field",
        collection="customers",
        field=relation("referrer", "customers", on_delete="set_null", required=True),
    )
    assert response.status_code == 422
    assert error(response)["code"] == "set_null_required"
    assert error(response)["field"] == "field.options.on_delete"


async def test_a_self_relation_links_and_includes_one_hop(api: Api) -> None:
    await api.create_collection(
        "employees",
        [{"name": "name", "type": "string"}, relation("manager", "employees")],
    )
    boss = await api.create("employees", {"name": "Boss"})
    worker = await api.create("employees", {"name": "Worker", "manager": boss["id"]})
    read = await get(api, records(api, "employees", worker["id"]) + "?include=manager")
    assert read.status_code == 200, read.text
    assert read.json()["manager"]["name"] == "Boss"
    assert read.json()["manager"]["manager_id"] is None
    assert "manager" not in read.json()["manager"]
    deep = await get(api, records(api, "employees") + "?include=manager.manager")
    assert deep.status_code == 400
    assert error(deep)["code"] == "nested_include"


# -- referential actions ----------------------------------------------------------------------


async def test_restrict_refuses_deleting_a_linked_record_naming_the_link(api: Api) -> None:
    await shop(api)
    customer = await api.create("customers", {"name": "Ada"})
    await api.create("orders", {"title": "o1", "customer_id": customer["id"]})
    response = await api.client.delete(
        records(api, "customers", customer["id"]), headers=api.headers
    )
    assert response.status_code == 409, response.text
    assert error(response)["code"] == "still_referenced"
    assert "orders.customer" in error(response)["message"]
    assert (await get(api, records(api, "customers", customer["id"]))).status_code == 200


async def test_cascade_deletes_linked_records_with_one_event_each(
    api: Api, database_url: str
) -> None:
    await shop(api, on_delete="cascade")
    customer = await api.create("customers", {"name": "Ada"})
    kept = await api.create("customers", {"name": "Bob"})
    first = await api.create("orders", {"title": "o1", "customer": customer["id"]})
    second = await api.create("orders", {"title": "o2", "customer": customer["id"]})
    other = await api.create("orders", {"title": "o3", "customer": kept["id"]})
    response = await api.client.delete(
        records(api, "customers", customer["id"]), headers=api.headers
    )
    assert response.status_code == 204
    left = (await get(api, records(api, "orders"))).json()["data"]
    assert [order["id"] for order in left] == [other["id"]]
    deletes = [e for e in await events_of(database_url, api.project) if e["type"] == "delete"]
    assert sorted((e["collection"], e["record_id"]) for e in deletes) == sorted(
        [("customers", customer["id"]), ("orders", first["id"]), ("orders", second["id"])]
    )


async def test_set_null_unlinks_with_an_update_event(api: Api, database_url: str) -> None:
    await shop(api, on_delete="set_null")
    customer = await api.create("customers", {"name": "Ada"})
    order = await api.create("orders", {"title": "o1", "customer_id": customer["id"]})
    response = await api.client.delete(
        records(api, "customers", customer["id"]), headers=api.headers
    )
    assert response.status_code == 204
    assert (await get(api, records(api, "orders", order["id"]))).json()["customer_id"] is None
    updates = [e for e in await events_of(database_url, api.project) if e["type"] == "update"]
    assert updates == [
        {
            "type": "update",
            "collection": "orders",
            "record_id": order["id"],
            "changed_fields": ["customer"],
        }
    ]


# -- writes, filters, sort ----------------------------------------------------------------------


async def test_link_relink_and_unlink_by_id(api: Api) -> None:
    await shop(api)
    ada = await api.create("customers", {"name": "Ada"})
    bob = await api.create("customers", {"name": "Bob"})
    order = await api.create("orders", {"title": "o1", "customer": ada["id"]})
    assert order["customer_id"] == ada["id"] and "customer" not in order
    url = records(api, "orders", order["id"])
    relinked = await api.client.patch(url, json={"customer_id": bob["id"]}, headers=api.headers)
    assert relinked.json()["customer_id"] == bob["id"]
    unlinked = await api.client.patch(url, json={"customer": None}, headers=api.headers)
    assert unlinked.json()["customer_id"] is None


@pytest.mark.parametrize("value", [987654, 0, -1])
async def test_an_unknown_id_is_a_422_on_the_column_and_writes_nothing(
    api: Api, database_url: str, value: int
) -> None:
    await shop(api)
    response = await api.client.post(
        records(api, "orders"), json={"title": "x", "customer": value}, headers=api.headers
    )
    assert response.status_code == 422, response.text
    assert error(response)["field"] in {"customer_id", "customer"}
    assert (await get(api, records(api, "orders"))).json()["data"] == []
    assert await events_of(database_url, api.project) == []


async def test_an_id_of_another_project_is_refused(
    api: Api, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    await shop(api)
    other = await new_project(client, admin_headers)
    await other.create_collection("customers", [{"name": "name", "type": "string"}])
    for _ in range(3):
        foreign = await other.create("customers", {"name": "Eve"})
    order = await api.create("orders", {"title": "o1"})
    response = await api.client.patch(
        records(api, "orders", order["id"]),
        json={"customer_id": foreign["id"]},
        headers=api.headers,
    )
    assert response.status_code == 422
    assert error(response) == {
        "field": "customer_id",
        "code": "not_found",
        "message": "customer_id names no existing record",
    }


async def test_filters_and_sort_by_the_relation_id(api: Api) -> None:
    await shop(api)
    ada = await api.create("customers", {"name": "Ada"})
    bob = await api.create("customers", {"name": "Bob"})
    o1 = await api.create("orders", {"title": "o1", "customer": bob["id"]})
    o2 = await api.create("orders", {"title": "o2", "customer": ada["id"]})
    o3 = await api.create("orders", {"title": "o3"})

    async def ids(query: str) -> list[int]:
        response = await get(api, records(api, "orders") + query)
        assert response.status_code == 200, response.text
        return [record["id"] for record in response.json()["data"]]

    assert await ids(f"?filter[customer_id]={ada['id']}") == [o2["id"]]
    assert await ids(f"?filter[customer][eq]={bob['id']}") == [o1["id"]]
    assert await ids("?filter[customer][is_null]=true") == [o3["id"]]
    assert await ids(f"?filter[customer_id][in]={ada['id']},{bob['id']}") == [o1["id"], o2["id"]]
    assert await ids("?sort=customer_id:desc") == [o3["id"], o1["id"], o2["id"]]
    bad = await get(api, records(api, "orders") + "?filter[customer][contains]=1")
    assert bad.status_code == 400


# -- include ------------------------------------------------------------------------------------


async def test_include_on_list_and_single_read(api: Api) -> None:
    await shop(api)
    ada = await api.create("customers", {"name": "Ada"})
    linked = await api.create("orders", {"title": "o1", "customer": ada["id"]})
    await api.create("orders", {"title": "o2"})
    page = (await get(api, records(api, "orders") + "?include=customer")).json()["data"]
    assert page[0]["customer"] == {**page[0]["customer"], "id": ada["id"], "name": "Ada"}
    assert page[0]["customer_id"] == ada["id"]
    assert page[1]["customer"] is None
    one = await get(api, records(api, "orders", linked["id"]) + "?include=customer")
    assert one.json()["customer"]["name"] == "Ada"
    plain = await get(api, records(api, "orders", linked["id"]))
    assert "customer" not in plain.json()


async def test_include_refuses_paths_unknown_names_and_too_many(api: Api) -> None:
    await shop(api)
    for query, code in [
        ("include=customer.region", "nested_include"),
        ("include=title", "unknown_include"),
        ("include=nothing", "unknown_include"),
        ("include=a,b,c,d,e,f", "too_many_includes"),
    ]:
        response = await get(api, records(api, "orders") + "?" + query)
        assert response.status_code == 400, query
        assert error(response)["code"] == code and error(response)["field"] == "include"
    single = await get(api, records(api, "orders", 1) + "?include=customer.x")
    assert single.status_code == 400


async def test_an_included_record_the_caller_may_not_read_is_null(api: Api) -> None:
    await shop(api)
    await api.create_collection(
        "profiles", [{"name": "owner", "type": "string"}, {"name": "secret", "type": "string"}]
    )
    await api.apply("add_field", collection="orders", field=relation("profile", "profiles"))
    mine = await api.create("profiles", {"owner": "", "secret": "mine"})
    theirs = await api.create("profiles", {"owner": "someone", "secret": "theirs"})
    ada = await api.create("customers", {"name": "Ada"})
    await api.create("orders", {"title": "a", "profile": mine["id"], "customer": ada["id"]})
    await api.create("orders", {"title": "b", "profile": theirs["id"], "customer": ada["id"]})
    await api.set_policies("orders", list="", read="")
    await api.set_policies("profiles", list="", read="owner = ''")
    # customers: admins only
    response = await api.client.get(records(api, "orders") + "?include=profile,customer")
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data[0]["profile"]["secret"] == "mine"
    assert data[1]["profile"] is None
    assert [order["customer"] for order in data] == [None, None]
    assert "theirs" not in response.text and "Ada" not in response.text


async def test_an_api_key_sees_only_the_collections_it_may_use(api: Api) -> None:
    await shop(api)
    ada = await api.create("customers", {"name": "Ada"})
    await api.create("orders", {"title": "o1", "customer": ada["id"]})
    await api.set_policies("orders", list="", read="")
    await api.set_policies("customers", list="", read="")  # readable, but not by this key
    key = await api.key(["records:read"], collections=["orders"])
    response = await get(api, records(api, "orders") + "?include=customer", key)
    assert response.status_code == 200, response.text
    assert response.json()["data"][0]["customer"] is None
    assert "Ada" not in response.text


@contextmanager
def counted_statements(api: Api) -> Iterator[list[str]]:
    """Every statement the records service sends while the block runs."""
    pool = api.client.app.state.tessera.db.pool  # type: ignore[attr-defined]
    sent: list[str] = []
    originals = {name: getattr(pool, name) for name in ("fetch", "fetchrow", "fetchval")}

    def counting(method: Callable[..., Any]) -> Callable[..., Any]:
        async def call(query: str, *args: Any) -> Any:
            sent.append(query)
            return await method(query, *args)

        return call

    for name, method in originals.items():
        setattr(pool, name, counting(method))
    try:
        yield sent
    finally:
        for name in originals:
            delattr(pool, name)


async def test_one_query_per_include_per_page(api: Api) -> None:
    await shop(api, reverse="orders")
    await api.create_collection("regions", [{"name": "name", "type": "string"}])
    await api.apply("add_field", collection="orders", field=relation("region", "regions"))
    region = await api.create("regions", {"name": "North"})
    for n in range(20):
        customer = await api.create("customers", {"name": f"c{n}"})
        await api.create(
            "orders", {"title": f"o{n}", "customer": customer["id"], "region": region["id"]}
        )
    await get(api, records(api, "orders") + "?include=customer,region")  # warm the catalog
    with counted_statements(api) as sent:
        response = await get(api, records(api, "orders") + "?include=customer,region")
    assert response.status_code == 200
    assert len(response.json()["data"]) == 20
    assert all(order["region"]["name"] == "North" for order in response.json()["data"])
    assert len(sent) == 3, sent
    with counted_statements(api) as sent:
        response = await get(api, records(api, "customers") + "?include=orders")
    assert len(sent) == 2, sent
    assert all(len(customer["orders"]) == 1 for customer in response.json()["data"])


async def test_a_reverse_include_lists_linking_records_capped_per_parent(
    make_settings: Callable[..., Settings],
) -> None:
    async with running(make_settings(include_per_parent=2)) as client:
        login = await client.post(
            "/api/admin/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
        )
        api = await new_project(client, {"Authorization": f"Bearer {login.json()['token']}"})
        await shop(api, reverse="orders")
        ada = await api.create("customers", {"name": "Ada"})
        lone = await api.create("customers", {"name": "Lone"})
        made = [
            await api.create("orders", {"title": f"o{n}", "customer": ada["id"]}) for n in range(3)
        ]
        page = (await get(api, records(api, "customers") + "?include=orders")).json()["data"]
        assert [o["id"] for o in page[0]["orders"]] == [made[0]["id"], made[1]["id"]]
        assert page[1]["id"] == lone["id"] and page[1]["orders"] == []
        one = await get(api, records(api, "customers", ada["id"]) + "?include=orders")
        assert len(one.json()["orders"]) == 2


async def test_a_reverse_name_must_not_clash_with_the_targets_fields(api: Api) -> None:
    await api.create_collection("customers", [{"name": "name", "type": "string"}])
    response = await api.apply(
        "create_collection",
        name="orders",
        fields=[relation("customer", "customers", reverse="name")],
    )
    assert response.status_code == 422
    assert error(response)["code"] == "reverse_taken"


# -- schema evolution -------------------------------------------------------------------------


async def test_renaming_the_target_keeps_the_key_and_includes(
    api: Api, pg: asyncpg.Connection
) -> None:
    await shop(api)
    ada = await api.create("customers", {"name": "Ada"})
    await api.create("orders", {"title": "o1", "customer": ada["id"]})
    renamed = await api.apply(
        "rename_collection", collection="customers", new_name="clients", grace_days=0
    )
    assert renamed.status_code == 200, renamed.text
    rewritten = renamed.json()["result"]["references_rewritten"]
    assert {"kind": "relation", "name": "orders.customer"}.items() <= rewritten[0].items()
    field = next(
        f
        for f in (await get(api, api.url("/collections/orders"))).json()["fields"]
        if f["name"] == "customer"
    )
    assert field["options"]["target"] == "clients"
    page = (await get(api, records(api, "orders") + "?include=customer")).json()["data"]
    assert page[0]["customer"]["name"] == "Ada"
    assert (await foreign_keys(pg, api.project))[0]["target"] == "clients"
    field_renamed = await api.apply(
        "rename_field", collection="orders", field="customer", new_name="buyer", grace_days=0
    )
    assert field_renamed.status_code == 200, field_renamed.text
    page = (await get(api, records(api, "orders") + "?include=buyer")).json()["data"]
    assert page[0]["buyer"]["name"] == "Ada" and page[0]["buyer_id"] == ada["id"]


async def test_a_dropped_relation_is_hidden_and_its_key_still_holds(api: Api) -> None:
    await shop(api)
    ada = await api.create("customers", {"name": "Ada"})
    order = await api.create("orders", {"title": "o1", "customer": ada["id"]})
    dropped = await api.apply("drop_field", collection="orders", field="customer")
    assert dropped.status_code == 200, dropped.text
    read = await get(api, records(api, "orders", order["id"]))
    assert "customer_id" not in read.json()
    included = await get(api, records(api, "orders") + "?include=customer")
    assert included.status_code == 400 and error(included)["code"] == "unknown_include"
    refused = await api.client.delete(records(api, "customers", ada["id"]), headers=api.headers)
    assert refused.status_code == 409  # the data is kept, so the link still protects it
    assert (await api.apply("restore_field", collection="orders", field="customer")).is_success
    page = (await get(api, records(api, "orders") + "?include=customer")).json()["data"]
    assert page[0]["customer"]["name"] == "Ada"


async def test_a_linked_collection_cannot_be_dropped_or_purged(api: Api) -> None:
    await shop(api)
    preview = await api.preview("drop_collection", collection="customers")
    assert any("orders.customer" in line for line in preview.json()["warnings"])
    response = await api.apply("drop_collection", collection="customers")
    assert response.status_code == 409
    assert error(response)["code"] == "collection_in_use"
    assert "orders.customer" in error(response)["message"]
    assert (await get(api, records(api, "customers"))).status_code == 200


async def test_a_self_relation_does_not_block_dropping_its_collection(api: Api) -> None:
    await api.create_collection("employees", [relation("manager", "employees")])
    response = await api.apply("drop_collection", collection="employees")
    assert response.status_code == 200, response.text


async def test_change_relation_previews_and_replaces_the_key(
    api: Api, pg: asyncpg.Connection
) -> None:
    await shop(api)
    ada = await api.create("customers", {"name": "Ada"})
    await api.create("orders", {"title": "o1", "customer": ada["id"]})
    preview = await api.preview(
        "change_relation", collection="orders", field="customer", on_delete="cascade"
    )
    assert preview.status_code == 200, preview.text
    assert any("DROP CONSTRAINT" in line for line in preview.json()["ddl"])
    assert any("ON DELETE CASCADE" in line for line in preview.json()["ddl"])
    assert (await foreign_keys(pg, api.project))[0]["delete_rule"] == "RESTRICT"
    applied = await api.apply(
        "change_relation", collection="orders", field="customer", on_delete="cascade"
    )
    assert applied.status_code == 200, applied.text
    assert [k["delete_rule"] for k in await foreign_keys(pg, api.project)] == ["CASCADE"]
    deleted = await api.client.delete(records(api, "customers", ada["id"]), headers=api.headers)
    assert deleted.status_code == 204
    assert (await get(api, records(api, "orders"))).json()["data"] == []


async def test_change_relation_to_a_target_the_values_do_not_fit_changes_nothing(
    api: Api, pg: asyncpg.Connection
) -> None:
    await shop(api)
    await api.create_collection("vendors", [{"name": "name", "type": "string"}])
    ada = await api.create("customers", {"name": "Ada"})
    await api.create("orders", {"title": "o1", "customer": ada["id"]})
    response = await api.apply(
        "change_relation", collection="orders", field="customer", target="vendors"
    )
    assert response.status_code == 409, response.text
    assert [k["target"] for k in await foreign_keys(pg, api.project)] == ["customers"]
    not_relation = await api.apply(
        "change_relation", collection="orders", field="title", on_delete="cascade"
    )
    assert not_relation.status_code == 409


# -- OpenAPI ----------------------------------------------------------------------------------


async def test_the_project_openapi_describes_relations_and_includes(api: Api) -> None:
    await shop(api, reverse="orders")
    document = (await get(api, api.url("/openapi.json"))).json()
    orders = document["components"]["schemas"]["OrdersRecord"]["properties"]
    assert orders["customer_id"]["anyOf"][0]["type"] == "integer"
    assert orders["customer"]["anyOf"][0] == {"$ref": "#/components/schemas/CustomersRecord"}
    customers = document["components"]["schemas"]["CustomersRecord"]["properties"]
    assert customers["orders"]["items"] == {"$ref": "#/components/schemas/OrdersRecord"}
    base = f"/api/projects/{api.project}/collections/orders/records"
    for path in (base, base + "/{id}"):
        names = [p["name"] for p in document["paths"][path]["get"]["parameters"]]
        assert "include" in names, path
    key = await api.key(["records:read"], collections=["orders"])
    limited = (await get(api, api.url("/openapi.json"), key)).json()
    assert "customer" not in limited["components"]["schemas"]["OrdersRecord"]["properties"]


# -- admin ------------------------------------------------------------------------------------


def test_the_field_form_offers_a_relations_options_as_plain_inputs() -> None:
    inputs = {option.key: option for option in option_inputs(RELATION.Options)}
    assert inputs["target"].kind == "text" and inputs["target"].required
    assert inputs["on_delete"].choices == ("restrict", "cascade", "set_null")
    assert inputs["display_field"].kind == "text" and inputs["reverse"].kind == "text"


async def test_the_explorer_shows_the_display_field_linking_to_the_record(api: Api) -> None:
    await shop(api, display_field="name")
    ada = await api.create("customers", {"name": "Ada Lovelace"})
    await api.create("orders", {"title": "o1", "customer": ada["id"]})
    await api.create("orders", {"title": "o2"})
    page = await api.client.get(
        f"/admin/p/{api.project}/c/orders/records", headers=admin_cookie(api.headers)
    )
    assert page.status_code == 200
    link = f'<a href="/admin/p/{api.project}/c/customers/records/{ada["id"]}">Ada Lovelace</a>'
    assert link in page.text


async def test_the_record_form_shows_the_linked_id(api: Api) -> None:
    await shop(api)
    ada = await api.create("customers", {"name": "Ada"})
    order = await api.create("orders", {"title": "o1", "customer": ada["id"]})
    form = await api.client.get(
        f"/admin/p/{api.project}/c/orders/records/{order['id']}", headers=admin_cookie(api.headers)
    )
    assert form.status_code == 200
    assert 'name="v.customer"' in form.text
    assert f'value="{ada["id"]}"' in form.text


async def test_the_picker_pages_and_searches_the_linked_collection(api: Api) -> None:
    await shop(api, display_field="name")
    for number in range(22):
        await api.create("customers", {"name": f"c{number:02d}"})
    url = f"/admin/p/{api.project}/c/customers/pick?display=name"
    session = admin_cookie(api.headers)
    first = (await api.client.get(url, headers=session)).json()
    assert len(first["data"]) == 20 and first["data"][0]["label"] == "c00"
    rest = await api.client.get(url + f"&cursor={first['next_cursor']}", headers=session)
    assert [c["label"] for c in rest.json()["data"]] == ["c20", "c21"]
    found = (await api.client.get(url + "&q=c1", headers=session)).json()
    assert len(found["data"]) == 10 and found["next_cursor"] is None
    refused = await api.client.get(url.replace("name", "nothing") + "&q=x", headers=session)
    assert refused.status_code == 400
    assert (await api.client.get(url)).status_code in {303, 401}  # not signed in


# -- the plugin disabled ----------------------------------------------------------------------


async def test_with_the_plugin_disabled_relation_fields_are_unavailable(
    api: Api, make_settings: Callable[..., Settings]
) -> None:
    await shop(api)
    ada = await api.create("customers", {"name": "Ada"})
    await api.create("orders", {"title": "o1", "customer": ada["id"]})
    settings = make_settings(plugins={"disabled": ["field_types.relation"]})
    async with running(settings) as client:
        plugins = (await client.get("/api/plugins", headers=api.headers)).json()
        assert "field_types.relation" not in {p["name"] for p in plugins["data"]}
        other = Api(client, api.headers, api.project)
        page = await get(other, records(other, "orders"))
        assert page.status_code == 200
        assert "customer_id" not in page.json()["data"][0]
        described = (await get(other, other.url("/collections/orders"))).json()
        assert all(f["name"] != "customer" for f in described["fields"])
        assert (await get(other, records(other, "orders") + "?include=customer")).status_code == 400
        created = await other.create("customers", {"name": "Bob"})
        assert created["name"] == "Bob"
        refused = await post_collection(other, "more", [relation("customer", "customers")])
        assert refused.status_code == 422
        assert error(refused)["code"] == "unknown_type"


# -- the field type contract ------------------------------------------------------------------

RELATION = Registry.from_hook(
    load_plugins(Settings(plugins={"enabled": ["field_types.relation"]})),
    "register_field_types",
    "field type",
    FieldType,
)["relation"]


class TestRelationContract(FieldTypeContract):
    # A self-relation of the contract's table: the sample rows link to row 5.
    field_type = RELATION(RELATION.Options(target="contract"))
    valid_values = [5, 5]
    invalid_values = ["1", True, 1.5, 0, -4]
    text_values = [("1", 1), (" 42 ", 42)]

    def prepare_schema(self, ops: Operations, schema: str) -> None:
        ops.execute(f'INSERT INTO "{schema}".contract (id) VALUES (5)')
