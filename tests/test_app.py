"""The application shell: health, readiness, metrics, OpenAPI, and the error body."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from prometheus_client import REGISTRY

from kernel.api import metrics as metrics_module
from kernel.api.metrics import FLUSH_SECONDS, RequestMetrics


async def test_healthz_answers(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_reports_database_and_bus(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"] == {"database": True, "bus": True}


async def test_unknown_route_gets_the_error_body(client: httpx.AsyncClient) -> None:
    response = await client.get("/no/such/route")
    assert response.status_code == 404
    assert response.json() == {
        "errors": [{"field": None, "code": "not_found", "message": "Not Found"}]
    }


async def test_wrong_method_gets_the_error_body(client: httpx.AsyncClient) -> None:
    response = await client.put("/healthz")
    assert response.status_code == 405
    assert response.json()["errors"][0]["code"] == "method_not_allowed"


async def test_fastapi_validation_errors_use_the_error_body(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/admin/login", json={"email": "a@b.c"})
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert errors[0]["field"] == "password"
    assert set(errors[0]) == {"field", "code", "message"}


async def test_malformed_json_is_a_400(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/admin/login", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "malformed_json"


async def test_metrics_count_requests_by_route(client: httpx.AsyncClient) -> None:
    await client.get("/healthz")
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert (
        'tessera_http_requests_total{method="GET",route="/healthz",status="200"}' in response.text
    )


def _sample(text: str, name: str, labels: str) -> float:
    """One sample's value from a Prometheus exposition (0 when absent)."""
    prefix = f"{name}{{{labels}}} "
    for line in text.splitlines():
        if line.startswith(prefix):
            return float(line[len(prefix) :])
    return 0.0


async def test_metrics_histogram_counts_every_request(client: httpx.AsyncClient) -> None:
    before = (await client.get("/metrics")).text
    for _ in range(3):
        assert (await client.get("/healthz")).status_code == 200
    after = (await client.get("/metrics")).text

    def delta(name: str, labels: str) -> float:
        return _sample(after, name, labels) - _sample(before, name, labels)

    route = 'route="/healthz"'
    assert delta("tessera_http_requests_total", f'method="GET",{route},status="200"') == 3
    assert delta("tessera_http_request_seconds_count", route) == 3
    assert delta("tessera_http_request_seconds_bucket", f'le="+Inf",{route}') == 3
    assert delta("tessera_http_request_seconds_sum", route) > 0


async def test_request_metrics_reach_prometheus_by_themselves() -> None:
    """Counted in the process first, added to the metrics within FLUSH_SECONDS, bucketed
    as Prometheus' own ``observe`` would (bounds inclusive)."""
    metrics = RequestMetrics()
    route = f"/test/{uuid.uuid4().hex}"
    for seconds in (0.0005, 0.001, 0.003, 7.0):
        metrics.record("GET", route, 200, seconds)
    metrics.record("GET", route, 503, 0.02)

    def value(name: str, **labels: str) -> float | None:
        return REGISTRY.get_sample_value(name, labels)

    assert value("tessera_http_request_seconds_count", route=route) is None  # not yet
    await asyncio.sleep(FLUSH_SECONDS + 0.3)
    requests = "tessera_http_requests_total"
    assert value(requests, method="GET", route=route, status="200") == 4
    assert value(requests, method="GET", route=route, status="503") == 1
    assert value("tessera_http_errors_total", route=route) == 1
    buckets = "tessera_http_request_seconds_bucket"
    assert value(buckets, route=route, le="0.001") == 2
    assert value(buckets, route=route, le="0.005") == 3
    assert value(buckets, route=route, le="0.025") == 4
    assert value(buckets, route=route, le="5.0") == 4
    assert value(buckets, route=route, le="+Inf") == 5
    assert value("tessera_http_request_seconds_sum", route=route) == pytest.approx(7.0245)


async def test_request_metrics_flush_at_once_when_too_many_wait(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A process too busy to flush on time holds at most MAX_PENDING requests of a kind."""
    monkeypatch.setattr(metrics_module, "MAX_PENDING", 3)
    metrics = RequestMetrics()
    route = f"/test/{uuid.uuid4().hex}"
    for _ in range(3):
        metrics.record("GET", route, 200, 0.002)
    count = REGISTRY.get_sample_value("tessera_http_request_seconds_count", {"route": route})
    assert count == 3  # no FLUSH_SECONDS waited


async def test_openapi_documents_every_api_route(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    paths = document["paths"]
    for path in (
        "/api/admin/login",
        "/api/plugins",
        "/api/projects",
        "/api/projects/{project_id}",
        "/api/projects/{project_id}/api-keys",
        "/api/projects/{project_id}/api-keys/{key_id}",
        "/api/projects/{project_id}/auth/signup",
        "/api/projects/{project_id}/auth/login",
        "/api/projects/{project_id}/collections",
        "/api/projects/{project_id}/collections/{collection}",
        "/api/projects/{project_id}/collections/{collection}/fields",
        "/api/projects/{project_id}/collections/{collection}/policies",
        "/api/projects/{project_id}/collections/{collection}/records",
        "/api/projects/{project_id}/collections/{collection}/records/{record_id}",
        "/api/projects/{project_id}/collections/{collection}/validate",
        "/api/projects/{project_id}/schema/preview",
        "/api/projects/{project_id}/schema/apply",
        "/api/projects/{project_id}/schema/ops",
        "/api/projects/{project_id}/schema/ops/{op_id}",
        "/api/projects/{project_id}/audit",
        "/api/projects/{project_id}/openapi.json",
        "/healthz",
        "/readyz",
        "/metrics",
    ):
        assert path in paths, path
    docs = await client.get("/docs")
    assert docs.status_code == 200


async def test_oversized_body_is_a_413(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/admin/login",
        content=b"x" * (1024 * 1024 + 1),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json()["errors"][0]["code"] == "payload_too_large"
