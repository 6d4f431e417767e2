"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import os

from fastapi import APIRouter, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    generate_latest,
)
from prometheus_client import (
    REGISTRY as DEFAULT_REGISTRY,
)

from kernel.api.deps import TesseraDep
from kernel.api.metrics import REQUEST_METRICS
from kernel.api.responses import Shape, json_response

router = APIRouter(tags=["health"])
#: The media type of the Prometheus exposition format (without its parameters).
_METRICS_MEDIA_TYPE = CONTENT_TYPE_LATEST.partition(";")[0]


class Liveness(Shape):
    status: str


class Readiness(Shape):
    """``status`` is ``ready`` (200) or ``unavailable`` (503); ``checks`` says which part
    answers."""

    status: str
    checks: dict[str, bool]


@router.get("/healthz", summary="Liveness: the process answers", response_model=Liveness)
async def healthz() -> Response:
    return json_response({"status": "ok"})


@router.get(
    "/readyz",
    summary="Readiness: the database and the event bus answer",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "the database or the bus is down"}},
)
async def readyz(tessera: TesseraDep) -> Response:
    checks = {"database": await tessera.db.ping(), "bus": await tessera.bus.healthy()}
    ready = all(checks.values())
    return json_response(
        {"status": "ready" if ready else "unavailable", "checks": checks}, 200 if ready else 503
    )


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {_METRICS_MEDIA_TYPE: {"schema": {"type": "string"}}}}},
)
async def metrics() -> Response:
    REQUEST_METRICS.flush()  # this process's latest counts; other workers' within a second
    registry = DEFAULT_REGISTRY
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
