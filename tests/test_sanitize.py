"""What PostgreSQL cannot store never reaches it from a platform route: NUL, lone
surrogates and integers beyond 64 bits in bodies, path ids and query strings are the
client's error (422 naming the JSON path, 404, 400), never a 500."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from kernel.api.sanitize import check_json_body
from kernel.errors import BadRequest, ValidationFailed
from kernel.events.reader import Position
from kernel.json_values import JsonLimits
from tests.conftest import Api, unique_id

NUL = "\\u0000"
SURROGATE = "\\ud800"
HUGE = "99999999999999999999"


async def send(api: Api, method: str, path: str, body: str) -> httpx.Response:
    return await api.client.request(
        method,
        path,
        content=body,
        headers={**api.headers, "Content-Type": "application/json"},
    )


def bodies(bad: str) -> list[tuple[str, str, str, str]]:
    """(method, path, body, JSON path named) for platform routes, ``bad`` in one value;
    ``{p}`` is the test's project."""
    return [
        ("POST", "/api/projects", f'{{"id": "{unique_id()}", "name": "a{bad}"}}', "name"),
        ("PATCH", "/api/projects/{p}", f'{{"name": "a{bad}"}}', "name"),
        ("POST", "/api/admin/login", f'{{"email": "a{bad}@x.test", "password": "p"}}', "email"),
        (
            "POST",
            "/api/projects/{p}/auth/login",
            f'{{"email": "a{bad}", "password": "p"}}',
            "email",
        ),
        (
            "POST",
            "/api/projects/{p}/collections",
            f'{{"name": "things", "display_name": "T{bad}", "fields": []}}',
            "display_name",
        ),
        (
            "POST",
            "/api/projects/{p}/schema/apply",
            '{"op": "create_collection", "args": {"name": "things", "fields": '
            f'[{{"name": "a", "type": "string", "display_name": "x{bad}"}}]}}}}',
            "args.fields[0].display_name",
        ),
        (
            "POST",
            "/api/projects/{p}/api-keys",
            f'{{"name": "k{bad}", "scopes": ["records:read"]}}',
            "name",
        ),
        (
            "POST",
            "/api/projects/{p}/webhooks",
            f'{{"url": "http://127.0.0.1/{bad}", "events": ["*"]}}',
            "url",
        ),
        (
            "POST",
            "/api/projects/{p}/workflows",
            f'{{"name": "w{bad}", "trigger": {{"collection": "things", "events": ["insert"]}},'
            ' "actions": []}',
            "name",
        ),
    ]


@pytest.mark.parametrize(
    ("method", "path", "body", "where"),
    [*bodies(NUL), *bodies(SURROGATE)],
    ids=lambda v: str(v)[:40],
)
async def test_nul_or_a_lone_surrogate_in_a_platform_body_is_422_naming_the_json_path(
    api: Api, method: str, path: str, body: str, where: str
) -> None:
    response = await send(api, method, path.format(p=api.project), body)
    assert response.status_code == 422, response.text
    (error,) = response.json()["errors"]
    assert (error["field"], error["code"]) == (where, "invalid_character")


async def test_an_integer_beyond_64_bits_in_a_platform_body_is_422(api: Api) -> None:
    await api.create_collection("things", [{"name": "a", "type": "string"}])
    body = (
        '{"name": "w", "trigger": {"collection": "things", "events": ["insert"]},'
        f' "actions": [{{"type": "send_webhook", "options": {{"webhook_id": {HUGE}}}}}]}}'
    )
    response = await send(api, "POST", api.url("/workflows"), body)
    assert response.status_code == 422, response.text
    (error,) = response.json()["errors"]
    assert (error["field"], error["code"]) == ("actions[0].options.webhook_id", "out_of_range")


@pytest.mark.parametrize(
    "path",
    [
        "/api/projects/ab%00cd",
        "/api/projects/{p}/webhooks/" + HUGE + "/deliveries",
        "/api/projects/{p}/workflows/" + HUGE,
        "/api/projects/{p}/workflows/" + HUGE + "/runs",
        "/api/projects/{p}/schema/ops/" + HUGE,
        "/api/projects/{p}/collections/th%00ings",
    ],
)
async def test_a_path_id_that_cannot_name_anything_is_404(api: Api, path: str) -> None:
    response = await api.client.get(path.format(p=api.project), headers=api.headers)
    assert response.status_code == 404, response.text
    assert response.json()["errors"][0]["code"].endswith("not_found")


@pytest.mark.parametrize("query", ["action=%00", "a%00=1", "limit=%00"])
async def test_nul_in_a_platform_query_string_is_400_naming_the_parameter(
    api: Api, query: str
) -> None:
    response = await api.client.get(api.url(f"/audit?{query}"), headers=api.headers)
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["code"] == "invalid_value"


async def test_clean_platform_bodies_still_work(api: Api) -> None:
    renamed = await api.client.patch(
        api.url(""), json={"name": "Caf\u00e9 \U0001f600"}, headers=api.headers
    )
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["name"] == "Caf\u00e9 \U0001f600"


@pytest.mark.parametrize(
    ("value", "field", "code"),
    [
        ({"a": [1, {"b": "x\x00"}]}, "a[1].b", "invalid_character"),
        ({"a\x00": 1}, None, "invalid_character"),
        ({"a": "\ud800"}, "a", "invalid_character"),
        ({"n": 2**63}, "n", "out_of_range"),
        ({"n": -(2**63) - 1}, "n", "out_of_range"),
        ({"n": float("nan")}, "n", "invalid_type"),
        ([[[[1]]]], "[0][0][0]", "too_deep"),
    ],
)
def test_check_json_body_names_the_json_path(value: Any, field: str | None, code: str) -> None:
    with pytest.raises(ValidationFailed) as raised:
        check_json_body(value, JsonLimits(max_depth=3))
    (item,) = raised.value.items
    assert (item.field, item.code) == (field, code)


def test_check_json_body_accepts_the_edges() -> None:
    check_json_body({"n": [2**63 - 1, -(2**63)], "s": "\U0001f600", "d": [[1]]}, JsonLimits(3))


@pytest.mark.parametrize(
    "cursor", ["\u00b2.1", "1.\u0665", "+1.2", "1_0.2", "99999999999999999999.1", "1.", ".1", "1"]
)
def test_an_event_cursor_is_ascii_decimal_within_64_bits(cursor: str) -> None:
    with pytest.raises(BadRequest) as raised:
        Position.decode(cursor)
    assert raised.value.items[0].field == "cursor"


def test_an_event_cursor_round_trips() -> None:
    position = Position(2**63 - 1, 42)
    assert Position.decode(position.encode()) == position


# --- the caller before the body -------------------------------------------------------------

#: Writes for signed-in callers only (``SignedIn`` routers), each with a body.
PROTECTED_WRITES = [
    ("POST", "/api/projects"),
    ("PATCH", "/api/projects/{p}"),
    ("POST", "/api/projects/{p}/api-keys"),
    ("POST", "/api/projects/{p}/collections"),
    ("POST", "/api/projects/{p}/collections/things/fields"),
    ("PUT", "/api/projects/{p}/collections/things/policies"),
    ("POST", "/api/projects/{p}/schema/preview"),
    ("POST", "/api/projects/{p}/schema/apply"),
    ("POST", "/api/projects/{p}/webhooks"),
    ("POST", "/api/projects/{p}/workflows"),
]
#: Bodies no route accepts: unstorable, not JSON, or of the wrong shape.
BAD_BODIES = {
    "nul": f'{{"name": "a{NUL}"}}',
    "surrogate": f'{{"name": "a{SURROGATE}"}}',
    "huge": f'{{"name": {HUGE}}}',
    "malformed": '{"name": ',
    "wrong shape": '{"name": 5, "unknown": [true]}',
}
BAD_CALLERS = {
    "anonymous": ({}, "unauthorized"),
    "bad token": ({"Authorization": "Bearer not.a.token"}, "invalid_token"),
    "bad key": ({"X-API-Key": "tsk_not-a-key"}, "invalid_api_key"),
}


@pytest.mark.parametrize(("method", "path"), PROTECTED_WRITES, ids=lambda v: str(v))
@pytest.mark.parametrize("body", BAD_BODIES.values(), ids=list(BAD_BODIES))
@pytest.mark.parametrize("caller", BAD_CALLERS.values(), ids=list(BAD_CALLERS))
async def test_a_caller_a_route_refuses_hears_401_whatever_the_body(
    api: Api, method: str, path: str, body: str, caller: tuple[dict[str, str], str]
) -> None:
    headers, code = caller
    response = await api.client.request(
        method,
        path.format(p=api.project),
        content=body,
        headers={**headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 401, response.text
    assert [error["code"] for error in response.json()["errors"]] == [code]


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/api/admin/login", 422),
        ("/api/projects/{p}/auth/login", 422),
        ("/api/projects/{p}/auth/signup", 422),
    ],
)
@pytest.mark.parametrize(
    "body", [BAD_BODIES["nul"], BAD_BODIES["wrong shape"]], ids=["nul", "shape"]
)
async def test_routes_open_to_anonymous_callers_answer_about_the_body(
    api: Api, path: str, status: int, body: str
) -> None:
    response = await api.client.post(
        path.format(p=api.project), content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == status, response.text


@pytest.mark.parametrize(
    ("method", "path", "status"), [("PUT", "/collections", 405), ("POST", "/nowhere", 404)]
)
async def test_a_bad_body_no_route_takes_gets_the_405_or_404(
    api: Api, method: str, path: str, status: int
) -> None:
    response = await send(api, method, api.url(path), BAD_BODIES["nul"])
    assert response.status_code == status, response.text


async def test_bad_credentials_on_sign_up_are_401_before_the_body(api: Api) -> None:
    response = await api.client.post(
        api.url("/auth/signup"),
        content=BAD_BODIES["nul"],
        headers={"Authorization": "Bearer not.a.token", "Content-Type": "application/json"},
    )
    assert response.status_code == 401, response.text
    assert response.json()["errors"][0]["code"] == "invalid_token"


@pytest.mark.parametrize(
    "path",
    [
        "/api/projects/a%00b",
        "/api/projects/a%00b/collections",
        "/api/projects/a%00b/collections/things/records",
        "/api/projects/a%00b/collections/things/records/1",
        "/api/projects/a%00b/schema/apply",
        "/api/projects/a%00b/webhooks",
        "/api/projects/a%00b/openapi.json",
        "/api/projects/a%00b/audit?action=x",
        "/api/projects/p/audit?action=%00",
    ],
)
@pytest.mark.parametrize("method", ["GET", "POST", "PATCH", "DELETE"])
async def test_odd_paths_without_credentials_are_404_or_400_never_500(
    client: httpx.AsyncClient, path: str, method: str
) -> None:
    response = await client.request(method, path, content=b'{"name": "x"}')
    assert response.status_code in (400, 404), response.text
    assert response.json()["errors"][0]["code"] in ("not_found", "invalid_value")


async def test_a_10_mb_chunked_body_to_collections_is_413(api: Api) -> None:
    async def ten_megabytes() -> AsyncIterator[bytes]:
        yield b'{"name": "big", "display_name": "'
        for _ in range(160):
            yield b"x" * 65536
        yield b'"}'

    for headers in (api.headers, {}):
        response = await api.client.post(
            api.url("/collections"),
            content=ten_megabytes(),
            headers={**headers, "Content-Type": "application/json"},
        )
        assert response.status_code == 413, response.text
        assert response.json()["errors"][0]["code"] == "payload_too_large"
