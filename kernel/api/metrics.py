"""Request metrics: counts and latencies by route, added to Prometheus once a second."""

from __future__ import annotations

import asyncio
import time
from bisect import bisect_right

from prometheus_client import Counter, Histogram

from kernel.api.exchange import Exchange, RequestStep

REQUESTS = Counter(
    "tessera_http_requests_total", "HTTP requests served", ["method", "route", "status"]
)
ERRORS = Counter("tessera_http_errors_total", "HTTP responses with status >= 500", ["route"])
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
LATENCY = Histogram(
    "tessera_http_request_seconds", "HTTP request latency", ["route"], buckets=LATENCY_BUCKETS
)
#: How long a process may hold request counts before they reach the metrics above.
FLUSH_SECONDS = 1.0
#: How many requests of one (method, route, status) a process may hold before they are
#: added at once (bounds the memory of a process whose event loop is too busy to flush).
MAX_PENDING = 100_000


class RequestMetrics:
    """Counts requests and latencies by route template (not raw path: bounded labels).

    A request only appends its latency to a list of this process, one list per (method,
    route, status); :meth:`flush` buckets and moves them into the Prometheus metrics, at
    most :data:`FLUSH_SECONDS` later (the ``/metrics`` route flushes its own process
    first), or at once when one list holds :data:`MAX_PENDING` latencies. Bucketing a
    sorted list once a second is a few C calls per bound, where bucketing each request as it
    came was Python work per request; and with several workers, Prometheus values live in
    shared files and every increment takes a lock, writes a file mapping and checks the
    process id (a system call): a few microseconds per request. One instance per process,
    :data:`REQUEST_METRICS`.
    """

    def __init__(self) -> None:
        self._pending: dict[tuple[str, str, int], list[float]] = {}
        self._flush_loop: asyncio.AbstractEventLoop | None = None

    def record(self, method: str, template: str, status: int, seconds: float) -> None:
        """Count one request; call from the event loop."""
        key = (method, template, status)
        latencies = self._pending.get(key)
        if latencies is None:
            latencies = self._pending[key] = []
        latencies.append(seconds)
        loop = asyncio.get_running_loop()
        if self._flush_loop is not loop:
            self._flush_loop = loop
            loop.call_later(FLUSH_SECONDS, self.flush)
        elif len(latencies) >= MAX_PENDING:
            self.flush()

    def flush(self) -> None:
        """Add every pending count to the Prometheus metrics."""
        self._flush_loop = None
        pending, self._pending = self._pending, {}
        for (method, template, status), latencies in pending.items():
            count = len(latencies)
            REQUESTS.labels(method, template, str(status)).inc(count)
            if status >= 500:
                ERRORS.labels(template).inc(count)
            _observe_many(LATENCY.labels(template), latencies)


def _observe_many(histogram: Histogram, latencies: list[float]) -> None:
    """What ``observe`` of each of ``latencies`` would have added, in one step per bucket.

    prometheus_client has no bulk observe; this writes the child's sum and per-bucket
    values (``_sum``, ``_buckets``: non-cumulative counts, one per bound and +Inf) as its
    own ``observe`` does (a latency on a bound counts in that bound's bucket).
    tests/test_app.py checks the exposition it produces.
    """
    latencies.sort()
    histogram._sum.inc(sum(latencies))
    below = 0  # latencies in the buckets so far
    for bound, value in zip(LATENCY_BUCKETS, histogram._buckets, strict=False):
        upto = bisect_right(latencies, bound, below)
        if upto > below:
            value.inc(upto - below)
        below = upto
    if below < len(latencies):
        histogram._buckets[-1].inc(len(latencies) - below)


REQUEST_METRICS = RequestMetrics()


class Metrics(RequestStep):
    """The request step feeding :data:`REQUEST_METRICS`: every request, by the template of
    the route that served it (``unmatched`` when none did: an unknown path, or an answer
    from an earlier step such as a CORS preflight or a 413), timed from when the pipeline
    took it (``Exchange.started``)."""

    def finish(self, exchange: Exchange) -> None:
        scope = exchange.scope
        template = getattr(scope.get("route"), "path", "unmatched")
        elapsed = time.perf_counter() - exchange.started
        REQUEST_METRICS.record(scope["method"], template, exchange.status, elapsed)
