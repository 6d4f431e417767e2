"""Tenant isolation: credentials of project A can neither see nor change project B; and
no credentials at all are a 401 on every protected route (403 is for credentials that are
not enough).

Every project route is listed once in ``ROUTES``; a route the app serves but the table does
not list fails ``test_every_project_route_is_checked``, so adding a route is adding a line.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
import pytest

from kernel.security.principal import SCOPES
from tests.conftest import Api, unique_id

#: A collection with the default policies (admins only).
CLOSED = "closed"
OPEN = dict.fromkeys(("list", "read", "create", "update", "delete"), "")
SECRET_OF_B = "only-b-may-see-this"
#: A saved view's definition over ``items``.
VIEW = {"base_collection": "items", "projection": ["name"]}
NEW_FIELD = {"collection": "items", "field": {"name": "extra", "type": "string"}}
#: Routes that are not about acting on a project with its credentials.
NOT_CHECKED = {
    ("POST", "/api/projects/{project_id}/auth/signup"),
    ("POST", "/api/projects/{project_id}/auth/login"),
}
#: Routes anyone may call without credentials.
PUBLIC = NOT_CHECKED | {
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/api/plugins"),
    ("POST", "/api/admin/login"),
    # Signed URLs: the signature is the credential (test_contract_storage.py refuses
    # unsigned, tampered and expired ones with 403).
    ("PUT", "/api/storage/local/upload"),
    ("GET", "/api/storage/local/download"),
}


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    body: Any = None
    query: dict[str, str] = field(default_factory=dict)

    def request(self, values: dict[str, Any]) -> dict[str, Any]:
        return {
            "method": self.method,
            "url": self.path.format(**values),
            "params": {name: value.format(**values) for name, value in self.query.items()},
            "json": self.body,
        }


ROUTES = [
    Route("GET", "/api/projects/{project_id}"),
    Route("PATCH", "/api/projects/{project_id}", {"name": "taken over"}),
    Route("PATCH", "/api/projects/{project_id}", {"settings": {"allow_signup": False}}),
    Route("DELETE", "/api/projects/{project_id}", query={"confirm": "{project_id}"}),
    Route("GET", "/api/projects/{project_id}/api-keys"),
    Route("POST", "/api/projects/{project_id}/api-keys", {"name": "mine", "scopes": list(SCOPES)}),
    Route("DELETE", "/api/projects/{project_id}/api-keys/{key_id}"),
    Route("GET", "/api/projects/{project_id}/collections"),
    Route("POST", "/api/projects/{project_id}/collections", {"name": "planted", "fields": []}),
    Route("GET", "/api/projects/{project_id}/collections/{collection}"),
    Route(
        "POST",
        "/api/projects/{project_id}/collections/{collection}/fields",
        {"name": "extra", "type": "string"},
    ),
    Route("PUT", "/api/projects/{project_id}/collections/{collection}/policies", OPEN),
    Route("GET", "/api/projects/{project_id}/collections/{collection}/rules"),
    Route(
        "POST",
        "/api/projects/{project_id}/collections/{collection}/rules",
        {"name": "planted", "when": "name = 'x'", "require": ["name"]},
    ),
    Route("DELETE", "/api/projects/{project_id}/collections/{collection}/rules/{name}"),
    Route(
        "POST", "/api/projects/{project_id}/schema/preview", {"op": "add_field", "args": NEW_FIELD}
    ),
    Route(
        "POST", "/api/projects/{project_id}/schema/apply", {"op": "add_field", "args": NEW_FIELD}
    ),
    Route("POST", "/api/projects/{project_id}/schema/apply", {"op": "no_such_op", "args": {}}),
    Route("GET", "/api/projects/{project_id}/schema/ops"),
    Route("GET", "/api/projects/{project_id}/schema/ops/{op_id}"),
    Route("GET", "/api/projects/{project_id}/collections/{collection}/records"),
    Route(
        "POST", "/api/projects/{project_id}/collections/{collection}/records", {"name": "planted"}
    ),
    Route("GET", "/api/projects/{project_id}/collections/{collection}/records/{record_id}"),
    Route(
        "PATCH",
        "/api/projects/{project_id}/collections/{collection}/records/{record_id}",
        {"name": "changed"},
    ),
    Route("DELETE", "/api/projects/{project_id}/collections/{collection}/records/{record_id}"),
    Route(
        "POST",
        "/api/projects/{project_id}/collections/{collection}/validate",
        {"record": {"name": "x"}},
    ),
    Route("GET", "/api/projects/{project_id}/audit"),
    Route("GET", "/api/projects/{project_id}/openapi.json"),
    Route("GET", "/api/projects/{project_id}/webhooks"),
    Route(
        "POST",
        "/api/projects/{project_id}/webhooks",
        {"url": "http://127.0.0.1:9/planted", "events": ["*"]},
    ),
    Route("DELETE", "/api/projects/{project_id}/webhooks/{webhook_id}"),
    Route("GET", "/api/projects/{project_id}/webhooks/{webhook_id}/deliveries"),
    Route(
        "POST",
        "/api/projects/{project_id}/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver",
    ),
    Route("GET", "/api/projects/{project_id}/workflows"),
    Route(
        "POST",
        "/api/projects/{project_id}/workflows",
        {
            "name": "planted",
            "trigger": {"collection": "items", "events": ["insert"]},
            "actions": [{"type": "set_field", "options": {"field": "name", "value": "x"}}],
        },
    ),
    Route("GET", "/api/projects/{project_id}/workflows/{workflow_id}"),
    Route("PATCH", "/api/projects/{project_id}/workflows/{workflow_id}", {"active": False}),
    Route("DELETE", "/api/projects/{project_id}/workflows/{workflow_id}"),
    Route("GET", "/api/projects/{project_id}/workflows/{workflow_id}/runs"),
    Route("GET", "/api/projects/{project_id}/views"),
    Route("POST", "/api/projects/{project_id}/views", {"name": "planted", **VIEW}),
    Route("GET", "/api/projects/{project_id}/views/{name}"),
    Route("GET", "/api/projects/{project_id}/views/{name}/meta"),
    Route("GET", "/api/projects/{project_id}/views/{name}/definition"),
    Route("PUT", "/api/projects/{project_id}/views/{name}/definition", VIEW),
    Route("GET", "/api/projects/{project_id}/views/{name}/versions"),
    Route("POST", "/api/projects/{project_id}/views/{name}/versions/{version}/activate"),
    Route("DELETE", "/api/projects/{project_id}/views/{name}"),
]


@dataclass
class Tenant:
    api: Api
    values: dict[str, Any]
    key: dict[str, str]
    user: dict[str, str]


async def make_tenant(client: httpx.AsyncClient, admin_headers: dict[str, str]) -> Tenant:
    """A project with an open collection ``items`` holding one record, an API key with
    every scope, a project user, and a second key (to be the target of revocations)."""
    project_id = unique_id("iso")
    response = await client.post(
        "/api/projects", json={"id": project_id, "name": "Tenant"}, headers=admin_headers
    )
    assert response.status_code == 201, response.text
    api = Api(client, admin_headers, project_id)
    await api.create_collection("items", [{"name": "name", "type": "string"}])
    await api.set_policies("items", **OPEN)
    record = await api.create("items", {"name": SECRET_OF_B})
    await api.create_collection(CLOSED, [{"name": "name", "type": "string"}])
    closed_record = await api.create(CLOSED, {"name": SECRET_OF_B})
    key = await api.key(list(SCOPES))
    spare = await client.post(
        api.url("/api-keys"),
        json={"name": "spare", "scopes": ["records:read"]},
        headers=admin_headers,
    )
    assert spare.status_code == 201, spare.text
    hook = await client.post(
        api.url("/webhooks"),
        json={"url": "http://127.0.0.1:9/hook", "events": ["items.delete"]},
        headers=admin_headers,
    )
    assert hook.status_code == 201, hook.text
    flow = await client.post(
        api.url("/workflows"),
        json={
            "name": "noop",
            "trigger": {"collection": "items", "events": ["delete"], "condition": "name = 'never'"},
            "actions": [{"type": "set_field", "options": {"field": "name", "value": "x"}}],
        },
        headers=admin_headers,
    )
    assert flow.status_code == 201, flow.text
    rule = await client.post(
        api.url("/collections/items/rules"),
        json={"name": "noop", "when": "name = 'never'", "require": ["name"]},
        headers=admin_headers,
    )
    assert rule.status_code == 201, rule.text
    view = await client.post(
        api.url("/views"), json={"name": "noop", **VIEW}, headers=admin_headers
    )
    assert view.status_code == 201, view.text
    ops = await client.get(api.url("/schema/ops"), headers=admin_headers)
    values = {
        "webhook_id": hook.json()["id"],
        "delivery_id": 1,
        "workflow_id": flow.json()["id"],
        "project_id": project_id,
        "collection": "items",
        "record_id": record["id"],
        "key_id": spare.json()["id"],
        "op_id": ops.json()["data"][0]["id"],
        "closed_record_id": closed_record["id"],
        "name": "noop",
        "version": 1,
    }
    return Tenant(api, values, key, await api.user(f"user@{project_id}.example.com"))


@pytest.fixture(scope="module")
async def tenants(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> tuple[Tenant, Tenant]:
    return await make_tenant(client, admin_headers), await make_tenant(client, admin_headers)


async def snapshot(tenant: Tenant) -> dict[str, Any]:
    """Everything an admin can see of a project."""
    api = tenant.api
    state = {}
    for path in (
        "",
        "/api-keys",
        "/collections",
        "/collections/items/records",
        f"/collections/{CLOSED}/records",
        "/schema/ops",
        "/audit",
        "/webhooks",
        "/workflows",
        "/views",
    ):
        response = await api.client.get(api.url(path), headers=api.headers)
        assert response.status_code == 200, response.text
        state[path] = response.json()
    return state


def route_id(route: Route) -> str:
    body = f" {route.body}" if route.method in {"PATCH", "POST", "PUT"} else ""
    return f"{route.method} {route.path}{body}"


@pytest.mark.parametrize("who", ["key", "user"])
@pytest.mark.parametrize("route", ROUTES, ids=route_id)
async def test_credentials_of_another_project_are_refused(
    tenants: tuple[Tenant, Tenant], route: Route, who: str
) -> None:
    a, b = tenants
    headers = a.key if who == "key" else a.user
    before = await snapshot(b)

    response = await b.api.client.request(**route.request(b.values), headers=headers)

    assert response.status_code in (403, 404), response.text
    errors = response.json()["errors"]
    assert errors and set(errors[0]) == {"field", "code", "message"}
    if who == "key" and response.status_code == 403:
        # The key has every scope: what it lacks is membership (or being an admin at all).
        assert errors[0]["code"] in {"wrong_project", "admin_only"}, response.text
    assert SECRET_OF_B not in response.text
    assert await snapshot(b) == before


@pytest.mark.parametrize("who", ["key", "user"])
async def test_the_same_credentials_work_in_their_own_project(
    tenants: tuple[Tenant, Tenant], who: str
) -> None:
    a, _ = tenants
    headers = a.key if who == "key" else a.user
    records = a.api.url("/collections/items/records")
    listed = await a.api.client.get(records, headers=headers)
    assert listed.status_code == 200, listed.text
    assert [row["name"] for row in listed.json()["data"]] == [SECRET_OF_B]
    read = await a.api.client.get(f"{records}/{a.values['record_id']}", headers=headers)
    assert read.status_code == 200


async def test_open_collections_of_another_project_stay_closed_to_its_credentials(
    tenants: tuple[Tenant, Tenant],
) -> None:
    """B's collection admits anonymous callers; A's credentials still do not pass as them."""
    a, b = tenants
    records = b.api.url("/collections/items/records")
    assert (await b.api.client.get(records)).status_code == 200
    response = await b.api.client.get(records, headers=a.key)
    assert response.status_code == 403
    assert response.json()["errors"][0]["code"] == "wrong_project"


async def test_every_project_route_is_checked(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    served = {
        (method.upper(), path)
        for path, operations in document["paths"].items()
        if path.startswith("/api/projects/{project_id}")
        for method in operations
    }
    checked = {(route.method, route.path) for route in ROUTES}
    assert served - NOT_CHECKED - checked == set()
    assert checked - served == set()


#: Routes outside a project that need credentials (an admin's).
PLATFORM_ROUTES = [
    Route("GET", "/api/projects"),
    Route("POST", "/api/projects", {"id": "planted_by_nobody", "name": "Planted"}),
]


async def test_no_credentials_is_401_on_every_protected_route(
    client: httpx.AsyncClient, tenants: tuple[Tenant, Tenant]
) -> None:
    """Every route of the live OpenAPI but the public ones answers an anonymous caller 401
    ``unauthorized`` (never 403): records routes over a collection only admins may use,
    and the policy-checked writes too."""
    _, b = tenants
    document = (await client.get("/openapi.json")).json()
    served = {
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method in operations
    }
    protected = [*ROUTES, *PLATFORM_ROUTES]
    assert served - PUBLIC - {(route.method, route.path) for route in protected} == set()
    values = {**b.values, "collection": CLOSED, "record_id": b.values["closed_record_id"]}
    before = await snapshot(b)
    refused = []
    for route in protected:
        response = await client.request(**route.request(values))
        code = response.json()["errors"][0]["code"] if response.status_code >= 400 else None
        if (response.status_code, code) != (401, "unauthorized"):
            refused.append(f"{route_id(route)} -> {response.status_code} {response.text}")
    assert refused == []
    assert await snapshot(b) == before


def forged_tokens(project_id: str) -> dict[str, str]:
    """Bearer tokens no server issued: an admin's and one of ``project_id``'s users signed
    with another secret, and an admin's with no signature at all (``alg: none``)."""
    now = int(time.time())
    admin = {"sub": "1", "kind": "admin", "role": "admin", "iat": now, "exp": now + 600}
    user = {**admin, "kind": "user", "role": "user", "project": project_id}
    return {
        "admin, wrong secret": jwt.encode(
            admin, "not-the-server-secret-but-long-enough-for-hs256", algorithm="HS256"
        ),
        "user, wrong secret": jwt.encode(
            user, "not-the-server-secret-but-long-enough-for-hs256", algorithm="HS256"
        ),
        "admin, unsigned": jwt.encode(admin, None, algorithm="none"),
    }


async def test_forged_tokens_are_401_on_every_protected_route(
    client: httpx.AsyncClient, tenants: tuple[Tenant, Tenant]
) -> None:
    """Every protected route (the list is the live OpenAPI's, see the tests above) answers
    a forged token 401, reveals nothing and changes nothing."""
    _, b = tenants
    before = await snapshot(b)
    accepted = []
    for name, token in forged_tokens(b.values["project_id"]).items():
        for route in [*ROUTES, *PLATFORM_ROUTES]:
            response = await client.request(
                **route.request(b.values), headers={"Authorization": f"Bearer {token}"}
            )
            if response.status_code != 401 or SECRET_OF_B in response.text:
                accepted.append(f"{name}: {route_id(route)} -> {response.status_code}")
    assert accepted == []
    assert await snapshot(b) == before
