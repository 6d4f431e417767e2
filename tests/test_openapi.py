"""The platform's ``/openapi.json`` says what the server does: real response shapes, the
error body of API.md for every error status a route can answer, the page size's maximum,
and a 405's ``Allow`` naming every method of the path. (tests/test_fuzz.py checks the
answers themselves against both documents.)"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from kernel.config import Settings
from tests.conftest import Api

ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}


async def platform_document(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    return response.json()


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]


def schema_of(document: dict[str, Any], reference: dict[str, Any]) -> dict[str, Any]:
    """``reference``'s schema, standing on its own (the components as ``$defs``)."""
    text = json.dumps({**reference, "$defs": document["components"]["schemas"]})
    return json.loads(text.replace("#/components/schemas/", "#/$defs/"))


async def test_the_document_is_valid_openapi(client: httpx.AsyncClient) -> None:
    validate(await platform_document(client))


async def test_json_responses_declare_their_shape(client: httpx.AsyncClient) -> None:
    document = await platform_document(client)
    vague = [
        (method, path, status)
        for method, path, operation in operations(document)
        for status, response in operation["responses"].items()
        for media, content in response.get("content", {}).items()
        if media == "application/json" and content.get("schema") in ({}, {"type": "string"})
    ]
    assert vague == []


async def test_every_error_response_is_the_error_body_of_the_api(
    client: httpx.AsyncClient,
) -> None:
    document = await platform_document(client)
    assert "HTTPValidationError" not in document["components"]["schemas"]
    assert "detail" not in str(document["components"]["schemas"])
    errors = {
        (method, path, status): response["content"]["application/json"]["schema"]
        for method, path, operation in operations(document)
        for status, response in operation["responses"].items()
        if status.startswith(("4", "5")) and path != "/readyz"
    }
    assert errors
    assert {key: schema for key, schema in errors.items() if schema != ERROR_REF} == {}


async def test_each_route_documents_the_errors_it_can_answer(client: httpx.AsyncClient) -> None:
    paths = (await platform_document(client))["paths"]

    def statuses(method: str, path: str) -> set[str]:
        return set(paths[path][method]["responses"])

    project = "/api/projects/{project_id}"
    # Needs credentials, names a project, takes a body, and can conflict.
    assert {"400", "401", "403", "404", "409", "413", "422", "503"} <= statuses(
        "post", f"{project}/collections"
    )
    # An integer id that does not parse is a 422; no body, so no 413.
    assert {"401", "403", "404", "422"} <= statuses("get", f"{project}/schema/ops/{{op_id}}")
    assert "413" not in statuses("get", f"{project}/schema/ops/{{op_id}}")
    # Sign-in needs no credentials but refuses wrong ones.
    assert "401" in statuses("post", "/api/admin/login")
    assert "security" not in paths["/api/admin/login"]["post"]
    assert paths[f"{project}/collections"]["get"]["security"] == [{"bearer": []}, {"apiKey": []}]
    # No quota policy is enabled: no route answers 429 (tests/test_hooks.py enables one).
    assert "429" not in statuses("post", f"{project}/collections")
    # Query-only routes answer 400 for a bad query, never FastAPI's 422.
    assert "422" not in statuses("get", f"{project}/audit")
    assert "400" in statuses("get", f"{project}/audit")


async def test_limit_has_its_maximum(client: httpx.AsyncClient) -> None:
    paths = (await platform_document(client))["paths"]
    maximum = Settings.model_fields["max_page_limit"].default
    for path in (
        "/api/projects/{project_id}/collections/{collection}/records",
        "/api/projects/{project_id}/audit",
        "/api/projects/{project_id}/schema/ops",
    ):
        (limit,) = [p for p in paths[path]["get"]["parameters"] if p["name"] == "limit"]
        assert limit["schema"]["maximum"] == maximum, path


async def test_a_project_document_has_the_projects_own_maximum(api: Api) -> None:
    await api.create_collection("items", [{"name": "title", "type": "string"}])
    changed = await api.client.patch(
        api.url(""), json={"settings": {"max_page_limit": 40}}, headers=api.headers
    )
    assert changed.status_code == 200, changed.text
    document = (await api.client.get(api.url("/openapi.json"), headers=api.headers)).json()
    listing = document["paths"][f"/api/projects/{api.project}/collections/items/records"]["get"]
    (limit,) = [p for p in listing["parameters"] if p["name"] == "limit"]
    assert limit["schema"]["maximum"] == 40
    over = await api.client.get(
        api.url("/collections/items/records"), params={"limit": 41}, headers=api.headers
    )
    assert over.status_code == 400


async def test_an_error_answered_matches_its_documented_schema(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    document = await platform_document(client)
    response = await client.post("/api/projects", json={"id": 5}, headers=admin_headers)
    assert response.status_code == 422
    declared = document["paths"]["/api/projects"]["post"]["responses"]["422"]
    schema = schema_of(document, declared["content"]["application/json"]["schema"])
    assert list(Draft202012Validator(schema).iter_errors(response.json())) == []


async def test_a_project_answered_matches_its_documented_schema(
    client: httpx.AsyncClient, admin_headers: dict[str, str], project: str
) -> None:
    document = await platform_document(client)
    response = await client.get(f"/api/projects/{project}", headers=admin_headers)
    declared = document["paths"]["/api/projects/{project_id}"]["get"]["responses"]["200"]
    schema = schema_of(document, declared["content"]["application/json"]["schema"])
    assert response.status_code == 200
    assert list(Draft202012Validator(schema).iter_errors(response.json())) == []


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/api/projects/{p}/collections", "GET, POST"),
        ("OPTIONS", "/api/projects/{p}/collections", "GET, POST"),
        ("PUT", "/api/projects/{p}/collections/things/records", "GET, POST"),
        ("PUT", "/api/projects", "GET, POST"),
        ("POST", "/api/projects/{p}/collections/things/records/1", "DELETE, GET, PATCH"),
    ],
)
async def test_a_405_allows_every_method_of_the_path(
    client: httpx.AsyncClient, project: str, method: str, path: str, allowed: str
) -> None:
    response = await client.request(method, path.format(p=project))
    assert response.status_code == 405
    listed = {name.strip() for name in response.headers["allow"].split(",")}
    assert set(allowed.split(", ")) <= listed
    assert response.json()["errors"][0]["code"] == "method_not_allowed"
