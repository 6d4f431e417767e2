"""What PostgreSQL cannot store never reaches it from a platform route: NUL, lone
surrogates and integers beyond 64 bits in bodies, path ids and query strings are the
client's error (422 naming the JSON path, 404, 400), never a 500."""

from __future__ import annotations

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
