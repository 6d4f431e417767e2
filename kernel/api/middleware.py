"""ASGI middleware: the body size limit and request metrics (pure ASGI, cheap per request)."""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kernel.api.responses import JSONResponse
from kernel.errors import PayloadTooLarge

REQUESTS = Counter(
    "tessera_http_requests_total", "HTTP requests served", ["method", "route", "status"]
)
ERRORS = Counter("tessera_http_errors_total", "HTTP responses with status >= 500", ["route"])
LATENCY = Histogram(
    "tessera_http_request_seconds",
    "HTTP request latency",
    ["route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)


class BodySizeLimit:
    """413 for bodies over ``limit`` bytes, by header or while streaming."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                await self._refuse(scope, receive, send)
                return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise PayloadTooLarge(self._message())
            return message

        await self.app(scope, limited, send)

    def _message(self) -> str:
        return f"request body is larger than {self.limit} bytes"

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        error = PayloadTooLarge(self._message())
        await JSONResponse(error.body(), status_code=413)(scope, receive, send)


class RequestMetrics:
    """Counts requests and latencies by route template (not raw path: bounded labels).

    The labelled children are kept per (method, template, status): ``labels()`` costs more
    than the increment itself, and the label sets are few.
    """

    def __init__(self) -> None:
        self._children: dict[tuple[str, str, int], tuple[Any, Any, Any]] = {}

    def record(self, method: str, template: str, status: int, seconds: float) -> None:
        key = (method, template, status)
        children = self._children.get(key)
        if children is None:
            children = (
                REQUESTS.labels(method, template, str(status)),
                LATENCY.labels(template),
                ERRORS.labels(template) if status >= 500 else None,
            )
            self._children[key] = children
        requests, latency, errors = children
        requests.inc()
        latency.observe(seconds)
        if errors is not None:
            errors.inc()


class Metrics:
    """ASGI middleware feeding :class:`RequestMetrics` for every HTTP request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.metrics = RequestMetrics()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status: dict[str, Any] = {"code": 500}

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            template = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.record(
                scope["method"], template, status["code"], time.perf_counter() - started
            )
