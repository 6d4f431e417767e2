"""The request pipeline: the same checks, run through the fast path and FastAPI.

Each test is parametrized over three targets in one project: the records routes (served by
the fast path), a plugin's hot route (``tests/test_hot_routes.py``'s plugin, served by the
fast path) and the collections/schema routes (served by FastAPI). Whatever the pipeline
does must look the same on all.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
import pytest
from prometheus_client import REGISTRY

from kernel.api.metrics import REQUEST_METRICS
from kernel.config import Settings
from tests.conftest import Api, running, unique_id
from tests.fake_plugins import FakeDistributions
from tests.test_hooks import new_project, probe, signed_in
from tests.test_hot_routes import hot_plugin

ORIGIN = "https://app.example"
LIMIT = 1024 * 1024

RATE_LIMIT_PLUGIN = """
import logging

from kernel import QuotaExceeded, QuotaPolicy, hookimpl

log = logging.getLogger("probe.rate")


class RateLimit(QuotaPolicy):
    '''Counts the requests of the projects in ``limits``; refuses those over the limit.'''

    name = "probe_rate"
    limits = {}
    seen = []

    async def check_request(self, project_id, principal):
        log.info("checked %s", project_id)
        self.seen.append((project_id, principal.kind))
        if project_id not in self.limits:
            return {}
        limit, used = self.limits[project_id]
        self.limits[project_id] = (limit, used + 1)
        if used >= limit:
            raise QuotaExceeded(
                f"{limit} requests per minute",
                code="rate_limited",
                headers={"Retry-After": "60", "X-RateLimit-Limit": str(limit)},
            )
        return {"X-RateLimit-Limit": str(limit), "X-RateLimit-Remaining": str(limit - used - 1)}


@hookimpl
def register_quota_policies():
    return [RateLimit]
"""


@dataclass
class Target:
    """A route to read and a route to write, served by one of the two paths."""

    name: str
    read_path: str
    read_template: str
    write_path: str


TARGETS = [
    Target(
        "fast path",
        "/collections/notes/records",
        "/api/projects/{project_id}/collections/{collection}/records",
        "/collections/notes/records",
    ),
    Target(
        "plugin hot route",
        "/hot/notes",
        "/api/projects/{project_id}/hot/{collection}",
        "/hot/notes",
    ),
    Target(
        "fastapi",
        "/collections",
        "/api/projects/{project_id}/collections",
        "/schema/preview",
    ),
]


@pytest.fixture(params=TARGETS, ids=lambda target: target.name)
def target(request: pytest.FixtureRequest) -> Target:
    return request.param


def served_by_fast_path(client: httpx.AsyncClient, method: str, path: str) -> bool:
    scope = {"type": "http", "method": method, "path": path}
    return client.app.fast_path.match(scope) is not None  # type: ignore[attr-defined]


async def prepared(api: Api, target: Target) -> tuple[str, str]:
    """The target's read and write URLs in ``api``'s project, checked to take their path."""
    await api.create_collection("notes", [{"name": "text", "type": "string"}])
    read, write = api.url(target.read_path), api.url(target.write_path)
    fast = target.name != "fastapi"
    assert served_by_fast_path(api.client, "GET", read) is fast
    assert served_by_fast_path(api.client, "POST", write) is fast
    return read, write


@asynccontextmanager
async def with_plugins(
    tmp_path_factory: pytest.TempPathFactory, settings: Settings, rate_limit: bool
) -> AsyncIterator[httpx.AsyncClient]:
    """An app for ``settings`` with the hot-route plugin and, if ``rate_limit``, the
    rate-limit plugin above."""
    distributions = FakeDistributions(tmp_path_factory.mktemp("pipeline") / "site")
    distributions.root.mkdir()
    distributions.activate()
    hot_plugin(distributions)
    if rate_limit:
        probe(distributions, "probe.rate", RATE_LIMIT_PLUGIN)
    try:
        async with running(settings) as client:
            yield client
    finally:
        distributions.deactivate()


@pytest.fixture(scope="module")
async def plain(
    tmp_path_factory: pytest.TempPathFactory, make_settings: Callable[..., Settings]
) -> AsyncIterator[httpx.AsyncClient]:
    """An app with the default settings and the hot-route plugin."""
    async with with_plugins(tmp_path_factory, make_settings(), rate_limit=False) as client:
        yield client


@pytest.fixture
async def api(plain: httpx.AsyncClient) -> Api:
    return await new_project(plain, await signed_in(plain))


@pytest.fixture(scope="module")
async def configured(
    tmp_path_factory: pytest.TempPathFactory, make_settings: Callable[..., Settings]
) -> AsyncIterator[httpx.AsyncClient]:
    """An app with CORS for :data:`ORIGIN`, the hot-route plugin and the rate-limit plugin."""
    settings = make_settings(cors_origins=[ORIGIN])
    async with with_plugins(tmp_path_factory, settings, rate_limit=True) as client:
        yield client


@pytest.fixture
async def configured_api(configured: httpx.AsyncClient) -> Api:
    return await new_project(configured, await signed_in(configured))


def rate_limit_policy() -> type:
    return sys.modules["probe_probe_rate"].RateLimit  # type: ignore[no-any-return]


# --- body limit ---------------------------------------------------------------------------


async def test_an_oversized_body_gets_the_same_413(api: Api, target: Target) -> None:
    _, write = await prepared(api, target)
    body = b'{"text": "' + b"x" * LIMIT + b'"}'
    headers = {**api.headers, "Content-Type": "application/json"}

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it arrives
        for start in range(0, len(body), 64 * 1024):
            yield body[start : start + 64 * 1024]

    expected = {
        "errors": [
            {
                "field": None,
                "code": "payload_too_large",
                "message": f"request body is larger than {LIMIT} bytes",
            }
        ]
    }
    for content in (body, chunks()):
        response = await api.client.post(write, content=content, headers=headers)
        assert response.status_code == 413
        assert response.json() == expected


async def test_a_clean_chunked_body_reaches_the_route_whole(api: Api, target: Target) -> None:
    """Read ahead by the body limit and the sanitising step, it still reaches the route."""
    _, write = await prepared(api, target)
    body = (CLEAN_BODIES[target.name]).encode()

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 7):
            yield body[start : start + 7]

    headers = {**api.headers, "Content-Type": "application/json"}
    response = await api.client.post(write, content=chunks(), headers=headers)
    assert response.status_code in (200, 201), response.text


# --- sanitising ---------------------------------------------------------------------------

HUGE = "99999999999999999999"
#: A write each target accepts, and one holding NUL with the field the 422 names.
CLEAN_BODIES = {
    "fast path": '{"text": "caf\\u00e9"}',
    "plugin hot route": '{"text": "caf\\u00e9"}',
    "fastapi": '{"op": "add_field", "args": {"collection": "notes", "field": '
    '{"name": "extra", "type": "string"}}}',
}
NUL_BODIES = {
    "fast path": ('{"text": "a\\u0000b"}', "text"),
    "plugin hot route": ('{"text": "a\\u0000b"}', "text"),
    "fastapi": (
        '{"op": "add_field", "args": {"collection": "notes", "field": '
        '{"name": "extra", "type": "string", "display_name": "a\\u0000b"}}}',
        "args.field.display_name",
    ),
}


@pytest.mark.parametrize("project_id", ["a%00b", "%00", HUGE, "-" + HUGE])
@pytest.mark.parametrize("signed_in", [True, False], ids=["credentials", "anonymous"])
async def test_a_path_that_cannot_name_anything_is_404(
    api: Api, target: Target, project_id: str, signed_in: bool
) -> None:
    await prepared(api, target)
    path = target.read_template.format(project_id=project_id, collection="notes")
    headers = api.headers if signed_in else {}
    for method in ("GET", "POST"):
        response = await api.client.request(method, path, headers=headers, content=b"{}")
        assert response.status_code == 404, response.text
        assert response.json()["errors"][0]["code"].endswith("not_found")


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("a%00=1", "a\x00"),
        ("limit=%00", "limit"),
        ("limit=5&filter%5Btext%5D=x%00", "filter[text]"),
    ],
)
@pytest.mark.parametrize("signed_in", [True, False], ids=["credentials", "anonymous"])
async def test_nul_in_the_query_string_is_the_same_400(
    api: Api, target: Target, query: str, field: str, signed_in: bool
) -> None:
    read, _ = await prepared(api, target)
    headers = api.headers if signed_in else {}
    response = await api.client.get(f"{read}?{query}", headers=headers)
    assert response.status_code == 400, response.text
    message = "must not contain NUL characters"
    assert response.json() == {
        "errors": [{"field": field, "code": "invalid_value", "message": message}]
    }


async def test_nul_in_a_body_is_422_naming_the_field(api: Api, target: Target) -> None:
    _, write = await prepared(api, target)
    body, field = NUL_BODIES[target.name]
    headers = {**api.headers, "Content-Type": "application/json"}
    response = await api.client.post(write, content=body, headers=headers)
    assert response.status_code == 422, response.text
    (error,) = response.json()["errors"]
    assert (error["field"], error["code"]) == (field, "invalid_character")


# --- authentication -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("credentials", "code"),
    [
        ({"X-API-Key": "tsk_not-a-key"}, "invalid_api_key"),
        ({"Authorization": "Basic dXNlcjpwdw=="}, "invalid_token"),
        ({"Authorization": "Bearer not.a.token"}, "invalid_token"),
    ],
)
async def test_bad_credentials_get_the_same_401(
    api: Api, target: Target, credentials: dict[str, str], code: str
) -> None:
    read, _ = await prepared(api, target)
    response = await api.client.get(read, headers=credentials)
    assert response.status_code == 401
    errors = response.json()["errors"]
    assert [(error["field"], error["code"]) for error in errors] == [(None, code)]


async def test_the_route_acts_for_the_principal_the_pipeline_found(
    api: Api, target: Target
) -> None:
    read, _ = await prepared(api, target)
    assert (await api.client.get(read, headers=api.headers)).status_code == 200
    anonymous = await api.client.get(read)  # records: denied by policy; schema: sign in first
    assert anonymous.status_code in (401, 403)
    assert anonymous.json()["errors"][0]["code"] in ("unauthorized", "policy_denied")


# --- request ids --------------------------------------------------------------------------


async def test_a_sane_request_id_is_echoed(api: Api, target: Target) -> None:
    read, _ = await prepared(api, target)
    response = await api.client.get(read, headers={**api.headers, "X-Request-Id": "req-42.a:b"})
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "req-42.a:b"


@pytest.mark.parametrize("incoming", [None, b"has spaces", b"x" * 129, "é".encode("latin-1")])
async def test_a_request_id_is_made_when_missing_or_not_sane(
    api: Api, target: Target, incoming: bytes | None
) -> None:
    read, _ = await prepared(api, target)
    headers: dict[str, str | bytes] = dict(api.headers)
    if incoming is not None:
        headers["X-Request-Id"] = incoming
    first = await api.client.get(read, headers=headers)
    second = await api.client.get(read, headers=headers)
    made = {first.headers["x-request-id"], second.headers["x-request-id"]}
    assert len(made) == 2 and (incoming or b"").decode("latin-1") not in made
    assert all(value.replace("-", "").isalnum() for value in made)


async def test_a_refused_request_carries_its_request_id(api: Api, target: Target) -> None:
    read, _ = await prepared(api, target)
    response = await api.client.get(read, headers={"X-API-Key": "tsk_no", "X-Request-Id": "r1"})
    assert response.status_code == 401
    assert response.headers["x-request-id"] == "r1"


# --- metrics ------------------------------------------------------------------------------


def served_count(method: str, template: str, status: int) -> float:
    REQUEST_METRICS.flush()
    labels = {"method": method, "route": template, "status": str(status)}
    return REGISTRY.get_sample_value("tessera_http_requests_total", labels) or 0.0


async def test_requests_are_counted_by_route_template(api: Api, target: Target) -> None:
    read, _ = await prepared(api, target)
    before = served_count("GET", target.read_template, 200)
    refused_before = served_count("GET", target.read_template, 401)
    for _ in range(3):
        assert (await api.client.get(read, headers=api.headers)).status_code == 200
    assert (await api.client.get(read, headers={"X-API-Key": "tsk_no"})).status_code == 401
    assert served_count("GET", target.read_template, 200) == before + 3
    assert served_count("GET", target.read_template, 401) == refused_before + 1


# --- CORS ---------------------------------------------------------------------------------


def cors_headers(response: httpx.Response) -> dict[str, str]:
    return {
        name: value for name, value in response.headers.items() if name.startswith("access-control")
    }


async def test_a_preflight_from_an_allowed_origin_is_answered(
    configured_api: Api, target: Target
) -> None:
    _, write = await prepared(configured_api, target)
    response = await configured_api.client.options(
        write,
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert response.status_code == 204
    assert cors_headers(response) == {
        "access-control-allow-origin": ORIGIN,
        "access-control-allow-methods": "GET, POST, PUT, PATCH, DELETE",
        "access-control-allow-headers": "authorization, content-type",
        "access-control-max-age": "600",
    }
    assert response.headers["vary"] == "Origin"
    assert "x-request-id" in response.headers


async def test_answers_to_an_allowed_origin_are_readable(
    configured_api: Api, target: Target
) -> None:
    read, _ = await prepared(configured_api, target)
    for headers, status in (
        ({**configured_api.headers, "Origin": ORIGIN}, 200),
        ({"Origin": ORIGIN, "X-API-Key": "tsk_no"}, 401),  # errors too: a script reads why
    ):
        response = await configured_api.client.get(read, headers=headers)
        assert response.status_code == status
        assert response.headers["access-control-allow-origin"] == ORIGIN
        exposed = response.headers["access-control-expose-headers"]
        assert "X-Request-Id" in exposed and "X-RateLimit-Remaining" in exposed


async def test_other_origins_get_no_cors_headers(configured_api: Api, target: Target) -> None:
    read, write = await prepared(configured_api, target)
    origin = {"Origin": "https://evil.example"}
    response = await configured_api.client.get(read, headers={**configured_api.headers, **origin})
    assert response.status_code == 200
    assert cors_headers(response) == {}
    preflight = await configured_api.client.options(
        write, headers={**origin, "Access-Control-Request-Method": "POST"}
    )
    assert preflight.status_code == 405  # an OPTIONS request like any other
    assert cors_headers(preflight) == {}


async def test_without_cors_origins_there_are_no_cors_headers(api: Api, target: Target) -> None:
    read, write = await prepared(api, target)
    response = await api.client.get(read, headers={**api.headers, "Origin": ORIGIN})
    assert response.status_code == 200
    assert cors_headers(response) == {}
    preflight = await api.client.options(
        write, headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"}
    )
    assert preflight.status_code == 405
    assert cors_headers(preflight) == {}


# --- quotas -------------------------------------------------------------------------------


async def test_a_quota_policy_adds_headers_then_refuses(
    configured_api: Api, target: Target
) -> None:
    read, _ = await prepared(configured_api, target)
    rate_limit_policy().limits[configured_api.project] = (2, 0)
    headers = {**configured_api.headers, "Origin": ORIGIN}
    remaining = []
    for _ in range(2):
        response = await configured_api.client.get(read, headers=headers)
        assert response.status_code == 200
        assert response.headers["x-ratelimit-limit"] == "2"
        remaining.append(response.headers["x-ratelimit-remaining"])
    assert remaining == ["1", "0"]
    refused = await configured_api.client.get(read, headers=headers)
    assert refused.status_code == 429
    assert refused.json() == {
        "errors": [{"field": None, "code": "rate_limited", "message": "2 requests per minute"}]
    }
    assert refused.headers["retry-after"] == "60"
    assert refused.headers["access-control-allow-origin"] == ORIGIN


async def test_a_quota_policy_sees_the_caller_and_only_project_routes(
    configured_api: Api, target: Target
) -> None:
    read, _ = await prepared(configured_api, target)
    seen = rate_limit_policy().seen
    seen.clear()
    await configured_api.client.get(read, headers=configured_api.headers)
    await configured_api.client.get(read, headers={"X-API-Key": "tsk_no"})
    await configured_api.client.get("/healthz")
    await configured_api.client.get("/api/projects", headers=configured_api.headers)
    assert seen == [(configured_api.project, "admin"), (configured_api.project, "anonymous")]


async def test_quota_checks_log_with_the_request_id(
    configured_api: Api, target: Target, caplog: pytest.LogCaptureFixture
) -> None:
    read, _ = await prepared(configured_api, target)
    request_id = unique_id("req")
    with caplog.at_level(logging.INFO, logger="probe.rate"):
        response = await configured_api.client.get(
            read, headers={**configured_api.headers, "X-Request-Id": request_id}
        )
    assert response.status_code == 200
    checked = [record for record in caplog.records if record.name == "probe.rate"]
    assert [record.request_id for record in checked] == [request_id]  # type: ignore[attr-defined]
