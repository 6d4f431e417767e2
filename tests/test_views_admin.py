"""The views admin page (issue 17, item 6): the builder saves versions, the live preview
runs unsaved definitions through the API's validation and runtime, versions diff and roll
back, API & Usage shows the meta's examples; only admins get in. Also the generic part of
the panel contract it uses: panel fragments."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from kernel import Forbidden
from kernel.config import Settings
from plugins.views.definition import Definition
from plugins.views.diff import PartChange, diff_definitions
from plugins.views.preview import preview
from tests.conftest import Api, running
from tests.fake_plugins import FakeDistributions
from tests.test_admin import admin_cookie
from tests.test_views import ORDERS_BY_CUSTOMER, create_view, run, shop

PAGE = "/admin/ext/views"
FRAGMENT = "/admin/ext/views/fragments/preview"


class AdminPage:
    """The views page as the signed-in admin: GET a page, POST its forms with its token."""

    def __init__(self, api: Api, admin_headers: dict[str, str]) -> None:
        self.api = api
        self.cookie = admin_cookie(admin_headers)

    async def get(self, **query: Any) -> httpx.Response:
        return await self.api.client.get(
            PAGE, params={"project": self.api.project, **query}, headers=self.cookie
        )

    async def csrf(self) -> str:
        shown = await self.get()
        assert shown.status_code == 200, shown.text
        token = re.search(r'name="csrf" value="([^"]+)"', shown.text)
        assert token is not None
        return token.group(1)

    async def post(self, path: str, fields: list[tuple[str, str]], **query: Any) -> httpx.Response:
        return await post_form(
            self.api.client,
            path,
            {"project": self.api.project, **query},
            [("csrf", await self.csrf()), *fields],
            self.cookie,
        )


async def post_form(
    client: httpx.AsyncClient,
    path: str,
    query: dict[str, Any],
    fields: list[tuple[str, str]],
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """POST ``fields`` (repeated names kept in order) as a browser posts a form."""
    return await client.post(
        path,
        params=query,
        content=urlencode(fields),
        headers={"Content-Type": "application/x-www-form-urlencoded", **(headers or {})},
    )


@pytest.fixture
def admin(api: Api, admin_headers: dict[str, str]) -> AdminPage:
    """The views page as the signed-in admin, on the test's project."""
    return AdminPage(api, admin_headers)


def builder_fields(customer: int, **changes: Any) -> list[tuple[str, str]]:
    """The builder form for "Orders by customer" as a browser posts it."""
    fields = {
        "name": "orders_by_customer",
        "description": "Paid orders of one customer",
        "base_collection": "orders",
        "join": "customer",
        "projection": ["title", "amount", "customer.name"],
        "filters": [("status", "eq", "paid", ""), ("customer", "eq", "", "customer_id")],
        "params": [("customer_id", "integer", "yes", "", str(customer), "")],
        "sort": [("amount", "desc")],
        "limit": ("25", "200"),
        **changes,
    }
    form = [
        ("action", "save"),
        ("name", fields["name"]),
        ("description", fields["description"]),
        ("base_collection", fields["base_collection"]),
        ("join", fields["join"]),
    ]
    form += [("projection", name) for name in fields["projection"]]
    for row in [*fields["filters"], ("", "", "", "")]:
        names = ("filter_field", "filter_op", "filter_value", "filter_param")
        form += list(zip(names, row, strict=True))
    for row in fields["params"]:
        names = ("param_name", "param_type", "param_required", "param_default", "param_example")
        form += list(zip((*names, "param_description"), row, strict=True))
    for row in fields["sort"]:
        form += list(zip(("sort_field", "sort_dir"), row, strict=True))
    form += [("limit_default", fields["limit"][0]), ("limit_max", fields["limit"][1])]
    return form


async def definition(api: Api, name: str = "orders_by_customer") -> dict[str, Any]:
    response = await api.client.get(api.url(f"/views/{name}/definition"), headers=api.headers)
    assert response.status_code == 200, response.text
    return response.json()


async def test_the_builder_offers_base_and_joined_fields_with_their_types_operators(
    api: Api, admin: AdminPage
) -> None:
    await shop(api)
    page = await admin.get(new=1, base="orders", join="customer")
    assert page.status_code == 200, page.text
    for name in ("title", "amount", "customer", "customer.name", "customer.owner"):
        assert f'name="projection" value="{name}"' in page.text
    menu = re.search(r'id="filter-operators">([^<]*)<', page.text)
    assert menu is not None
    operators = {
        field: {op["name"] for op in entry["operators"]}
        for field, entry in json.loads(menu.group(1)).items()
    }
    assert {"gt", "between"} <= operators["amount"] and "contains" not in operators["amount"]
    assert "contains" in operators["customer.name"]
    assert '<option value="customer" selected>customer → customers</option>' in page.text


async def test_saving_the_builder_creates_version_1_and_then_version_2(
    api: Api, admin: AdminPage
) -> None:
    customers = await shop(api)
    customer = customers[1]["id"]
    saved = await admin.post(PAGE, builder_fields(customer), new=1)
    assert saved.status_code == 303, saved.text
    assert saved.headers["location"].endswith("view=orders_by_customer")
    first = await definition(api)
    assert first["version"] == 1
    assert first["filters"] == [
        {"field": "status", "op": "eq", "value": "paid"},
        {"field": "customer", "op": "eq", "param": "customer_id"},
    ]
    assert first["params"][0] == {
        "name": "customer_id",
        "type": "integer",
        "required": True,
        "example": customer,
        "description": "",
    }
    rows = (await run(api, "orders_by_customer", {"customer_id": customer})).json()["data"]
    assert rows and {row["customer.name"] for row in rows} == {"c1"}
    assert [row["amount"] for row in rows] == sorted((r["amount"] for r in rows), reverse=True)

    fields = builder_fields(customer, projection=["title", "amount", "status"])
    changed = await admin.post(PAGE, fields, view="orders_by_customer")
    assert changed.status_code == 303, changed.text
    second = await definition(api)
    assert second["version"] == 2 and second["projection"] == ["title", "amount", "status"]
    listed = await admin.get()
    assert "orders_by_customer" in listed.text and "title, amount, status" in listed.text


async def test_the_live_preview_runs_an_unsaved_definition_as_the_api_would(
    api: Api, admin: AdminPage
) -> None:
    customers = await shop(api)
    customer = customers[2]["id"]
    shown = await admin.post(FRAGMENT, builder_fields(customer))
    assert shown.status_code == 200, shown.text
    assert shown.headers["X-Admin-Fragment"] == "1"
    assert "<html" not in shown.text and "data-preview-rows" in shown.text
    listed = await api.client.get(api.url("/views"), headers=api.headers)
    assert listed.json()["data"] == []  # a preview saves nothing
    titles = re.findall(r"<tr><td>(o\d+)</td>", shown.text)
    assert titles
    await create_view(api, {**ORDERS_BY_CUSTOMER, "projection": ["title", "amount"]})
    api_rows = (await run(api, "orders_by_customer", {"customer_id": customer, "limit": 5})).json()
    assert titles == [row["title"] for row in api_rows["data"]]


async def test_the_preview_names_the_part_of_a_definition_that_does_not_validate(
    api: Api, admin: AdminPage
) -> None:
    customers = await shop(api)
    customer = customers[0]["id"]
    cases = {
        "filters[0].op": builder_fields(customer, filters=[("amount", "contains", "3", "")]),
        "filters[1].param": builder_fields(
            customer, filters=[("status", "eq", "paid", ""), ("customer", "eq", "", "nobody")]
        ),
        "projection": builder_fields(customer, projection=[]),
        "params[0].example": builder_fields(
            customer, params=[("customer_id", "integer", "yes", "", "many", "")]
        ),
        "params[0].name": builder_fields(
            customer, params=[("Customer Id", "integer", "yes", "", "1", "")]
        ),
        "sort": builder_fields(customer, sort=[("nothing", "asc")]),
        "limit": builder_fields(customer, limit=("500", "100")),
    }
    for part, fields in cases.items():
        shown = await admin.post(FRAGMENT, fields)
        assert shown.status_code == 200, (part, shown.text)
        assert "data-problems" in shown.text, (part, shown.text)
        assert f"<code>{part}</code>" in shown.text, (part, shown.text)
    missing = builder_fields(customer, params=[("customer_id", "integer", "yes", "", "", "")])
    shown = await admin.post(FRAGMENT, missing)
    assert "parameter &#x27;customer_id&#x27; is required" in shown.text
    assert "give each required parameter an example" in shown.text
    unknown = await admin.post(FRAGMENT, builder_fields(customer, base_collection="nope"))
    assert "<code>base_collection</code>" in unknown.text


async def test_a_failed_save_shows_its_problems_on_the_page_and_keeps_the_form(
    api: Api, admin: AdminPage
) -> None:
    customers = await shop(api)
    fields = builder_fields(customers[0]["id"], filters=[("amount", "contains", "3", "")])
    refused = await admin.post(PAGE, fields, new=1)
    assert refused.status_code == 200, refused.text
    assert "Not saved: fix these parts" in refused.text
    assert "<code>filters[0].op</code>: operator &#x27;contains&#x27; does not apply" in (
        refused.text
    )
    assert 'value="orders_by_customer"' in refused.text
    assert 'name="projection" value="customer.name" checked' in refused.text
    listed = await api.client.get(api.url("/views"), headers=api.headers)
    assert listed.json()["data"] == []

    badly_named = await admin.post(PAGE, builder_fields(1, name="Orders!"), new=1)
    assert "<code>name</code>" in badly_named.text

    await create_view(api, ORDERS_BY_CUSTOMER)
    taken = await admin.post(PAGE, builder_fields(1), new=1)
    assert "view &#x27;orders_by_customer&#x27; exists" in taken.text
    unchanged = await admin.post(
        PAGE, builder_fields(1, projection=["nothing"]), view="orders_by_customer"
    )
    assert "<code>projection[0]</code>" in unchanged.text
    assert (await definition(api))["version"] == 1


async def test_versions_diff_any_version_against_the_active_one_and_roll_back(
    api: Api, admin: AdminPage
) -> None:
    await shop(api)
    await create_view(api, ORDERS_BY_CUSTOMER)
    changed = {
        key: value for key, value in ORDERS_BY_CUSTOMER.items() if key not in {"name", "join"}
    }
    changed.update(
        projection=["title", "amount", "status"],
        filters=[{"field": "customer_id", "op": "eq", "param": "customer_id"}],
        sort="title:asc",
        limit={"default": 10, "max": 50},
    )
    response = await api.client.put(
        api.url("/views/orders_by_customer/definition"), json=changed, headers=api.headers
    )
    assert response.status_code == 200, response.text

    page = await admin.get(view="orders_by_customer", tab="versions", diff=1)
    assert page.status_code == 200, page.text
    text = html.unescape(page.text)
    assert "Version 1 compared with the active version 2" in text
    for line in ('status = "paid"', "customer.name", "customer_id", "through customer"):
        assert re.search(rf'class="diff-removed">.*?{re.escape(line)}', text), line
    assert re.search(r'class="diff-added">.*?status</li>', text)
    assert "title ascending" in text and "amount descending" in text
    assert "10 rows by default, at most 50" in text
    assert "Description" not in text.split("Version 1 compared")[1].split("</table>")[0]

    rolled = await admin.post(
        PAGE, [("action", "activate"), ("version", "1")], view="orders_by_customer"
    )
    assert rolled.status_code == 303, rolled.text
    active = await definition(api)
    assert active["version"] == 1 and active["projection"] == ORDERS_BY_CUSTOMER["projection"]
    after = await admin.get(view="orders_by_customer", tab="versions")
    assert "Activate version 2" in after.text and "Activate version 1" not in after.text

    for bad in ("x", "9"):
        refused = await admin.post(
            PAGE, [("action", "activate"), ("version", bad)], view="orders_by_customer"
        )
        assert refused.status_code == 303, refused.text
        assert (await definition(api))["version"] == 1


async def test_api_and_usage_shows_the_meta_and_its_exact_examples(
    api: Api, admin: AdminPage
) -> None:
    await shop(api)
    await create_view(api, ORDERS_BY_CUSTOMER)
    meta = await api.client.get(api.url("/views/orders_by_customer/meta"), headers=api.headers)
    page = await admin.get(view="orders_by_customer", tab="api")
    assert page.status_code == 200, page.text
    examples = meta.json()["examples"]
    for key, element in (
        ("curl", "example-curl"),
        ("fetch", "example-fetch"),
        ("axios", "example-axios"),
        ("postman_url", "example-postman"),
    ):
        shown = re.search(rf'<pre id="{element}" class="example">(.*?)</pre>', page.text, re.S)
        assert shown is not None and html.unescape(shown.group(1)) == examples[key]
        assert f'data-copy="#{element}"' in page.text
    text = html.unescape(page.text)
    assert "X-API-Key: <key>" in text and "records:read" in text
    assert "<code>orders</code>, <code>customers</code>" in text
    assert "<code>customer_id</code>" in text and "filter[field][op]=value" in text


async def test_only_signed_in_admins_use_the_views_page(api: Api) -> None:
    customers = await shop(api)
    await create_view(api, ORDERS_BY_CUSTOMER)
    user = await api.user("viewer@example.test")
    as_user = {"Cookie": admin_cookie(user)["Cookie"]}
    shown = await api.client.get(PAGE, params={"project": api.project}, headers=as_user)
    assert shown.status_code == 303 and shown.headers["location"].startswith("/admin/login")
    fields = [("csrf", "x"), *builder_fields(customers[0]["id"])]
    for path in (FRAGMENT, PAGE):
        refused = await post_form(api.client, path, {"project": api.project}, fields, as_user)
        assert refused.status_code == 403, refused.text
        assert "o1" not in refused.text
    anonymous = await post_form(api.client, FRAGMENT, {"project": api.project}, fields)
    assert anonymous.status_code == 403 and "X-Admin-Fragment" not in anonymous.headers

    tessera = api.client.app.state.tessera  # type: ignore[attr-defined]
    principal = tessera.tokens.verify(user["Authorization"].removeprefix("Bearer "))
    spec = Definition.model_validate(
        {key: value for key, value in ORDERS_BY_CUSTOMER.items() if key != "name"}
    )
    try:
        await preview(tessera, api.project, spec, principal)
    except Forbidden as error:
        assert error.items[0].code == "missing_scope"
    else:
        raise AssertionError("a project user previewed a view definition")


async def test_panel_fragments_answer_alone_and_turn_errors_into_fragments(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    cookie = admin_cookie(admin_headers)
    unknown = await client.get("/admin/ext/views/fragments/nothing", headers=cookie)
    assert unknown.status_code == 404 and "no part called" in unknown.text
    no_project = await client.get(f"{FRAGMENT}?project=nope", headers=cookie)
    assert no_project.status_code == 404
    assert no_project.headers["X-Admin-Fragment"] == "1"
    assert no_project.text.startswith('<div class="flash flash-error"')
    assert no_project.headers["Content-Security-Policy"].startswith("default-src 'self'")
    other_panel = await client.get("/admin/ext/webhooks/fragments/preview", headers=cookie)
    assert other_panel.status_code == 404


FRAGMENT_PLUGIN = """
    from kernel import AdminPanel, Conflict, hookimpl

    async def render(request, tessera):
        return "<p>echo page</p>"

    async def echo(request, tessera):
        form = await request.form()
        return "<p>heard " + str(len(form.getlist("q"))) + "</p>"

    async def busy(request, tessera):
        raise Conflict("not now <b>", code="busy")

    async def broken(request, tessera):
        raise RuntimeError("boom")

    @hookimpl
    def register_admin_panels(tessera):
        parts = {"echo": echo, "busy": busy, "broken": broken}
        return [AdminPanel(slug="echo", title="Echo", render=render, fragments=parts)]
"""


async def test_a_third_party_panel_serves_its_fragments_alone(
    fake_distributions: FakeDistributions,
    make_settings: Callable[..., Settings],
    admin_headers: dict[str, str],
) -> None:
    fake_distributions.add(
        "tests-echo", {"echo.panel": "echo_panel"}, {"echo_panel": FRAGMENT_PLUGIN}
    )
    async with running(make_settings()) as client:
        cookie = admin_cookie(admin_headers)
        page = await client.get("/admin/ext/echo", headers=cookie)
        token = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert token is not None
        fields = [("csrf", token.group(1)), ("q", "a"), ("q", "b")]
        heard = await post_form(client, "/admin/ext/echo/fragments/echo", {}, fields, cookie)
        assert (heard.status_code, heard.text) == (200, "<p>heard 2</p>")
        assert heard.headers["X-Admin-Fragment"] == "1"
        forged = [("csrf", "forged"), ("q", "a")]
        refused = await post_form(client, "/admin/ext/echo/fragments/echo", {}, forged, cookie)
        assert refused.status_code == 403 and "X-Admin-Fragment" not in refused.headers
        busy = await client.get("/admin/ext/echo/fragments/busy", headers=cookie)
        assert busy.status_code == 409 and "not now &lt;b&gt;" in busy.text
        broken = await client.get("/admin/ext/echo/fragments/broken", headers=cookie)
        assert broken.status_code == 500 and "The plugin echo.panel could not" in broken.text
        assert "boom" not in broken.text
        signed_out = await client.get("/admin/ext/echo/fragments/echo")
        assert signed_out.status_code == 303 and "X-Admin-Fragment" not in signed_out.headers


async def test_an_unknown_view_is_a_404_page_not_a_failure(api: Api, admin: AdminPage) -> None:
    shown = await admin.get(view="nothing_here")
    assert shown.status_code == 404
    assert "view 'nothing_here' not found" in html.unescape(shown.text)


def test_the_diff_lists_each_changed_part_in_words() -> None:
    before = {
        "base_collection": "orders",
        "projection": ["title", "amount"],
        "filters": [{"field": "amount", "op": "between", "value": [1, 5]}],
        "params": [{"name": "min", "type": "integer", "required": True, "example": 1}],
        "limit": {"default": 25, "max": 200},
    }
    after = {
        **before,
        "projection": ["amount", "title"],
        "filters": [{"field": "amount", "op": "gte", "param": "min"}],
        "params": [{"name": "min", "type": "integer", "required": False, "default": 2}],
        "sort": "amount:desc",
    }
    assert diff_definitions(before, after) == [
        PartChange(
            "projection",
            "Columns",
            ("title", "amount"),
            ("amount", "title"),
            (),
            (),
            "same items, another order",
        ),
        PartChange(
            "filters",
            "Filters",
            ("amount between 1, 5",),
            ("amount ≥ :min",),
            ("amount between 1, 5",),
            ("amount ≥ :min",),
        ),
        PartChange(
            "sort",
            "Sort",
            ("by id (the default)",),
            ("amount descending",),
            ("by id (the default)",),
            ("amount descending",),
        ),
        PartChange(
            "params",
            "Parameters",
            ("min (integer, required, example 1)",),
            ("min (integer, optional, default 2)",),
            ("min (integer, required, example 1)",),
            ("min (integer, optional, default 2)",),
        ),
    ]
    assert diff_definitions(before, dict(before)) == []


async def test_a_join_sent_as_a_list_of_one_is_stored_as_that_join(
    api: Api, admin: AdminPage
) -> None:
    """A stored list broke every schema operation of the project (the reference holder
    read ``join`` as one spec)."""
    await shop(api)
    await create_view(api, {**ORDERS_BY_CUSTOMER, "join": [{"relation": "customer"}]})
    assert (await definition(api))["join"] == {"relation": "customer"}
    renamed = await api.apply("rename_field", collection="orders", field="title", new_name="label")
    assert renamed.status_code == 200, renamed.text
    assert (await definition(api))["projection"][0] == "label"
    builder = await admin.get(view="orders_by_customer")
    assert '<input type="hidden" name="join" value="customer">' in builder.text
    usage = await admin.get(view="orders_by_customer", tab="api")
    assert "<code>orders</code>, <code>customers</code>" in usage.text
