"""Request metrics: counts and latencies by route, added to Prometheus once a second."""

from __future__ import annotations

import asyncio
import time
from bisect import bisect_left

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


class _Tally:
    """Requests of one (method, route, status) not yet added to the metrics."""

    __slots__ = ("buckets", "count", "seconds")

    def __init__(self) -> None:
        self.count = 0
        self.seconds = 0.0
        #: Requests per latency bucket, the last one for "slower than every bound".
        self.buckets = [0] * (len(LATENCY_BUCKETS) + 1)


class RequestMetrics:
    """Counts requests and latencies by route template (not raw path: bounded labels).

    A request only adds to plain counters of this process; :meth:`flush` moves them into
    the Prometheus metrics, at most :data:`FLUSH_SECONDS` later (the ``/metrics`` route
    flushes its own process first). With several workers, Prometheus values live in shared
    files and every increment takes a lock, writes a file mapping and checks the process
    id (a system call): a few microseconds per request. One instance per process,
    :data:`REQUEST_METRICS`.
    """

    def __init__(self) -> None:
        self._pending: dict[tuple[str, str, int], _Tally] = {}
        self._flush_loop: asyncio.AbstractEventLoop | None = None

    def record(self, method: str, template: str, status: int, seconds: float) -> None:
        """Count one request; call from the event loop."""
        key = (method, template, status)
        tally = self._pending.get(key)
        if tally is None:
            tally = self._pending[key] = _Tally()
        tally.count += 1
        tally.seconds += seconds
        tally.buckets[bisect_left(LATENCY_BUCKETS, seconds)] += 1
        loop = asyncio.get_running_loop()
        if self._flush_loop is not loop:
            self._flush_loop = loop
            loop.call_later(FLUSH_SECONDS, self.flush)

    def flush(self) -> None:
        """Add every pending count to the Prometheus metrics."""
        self._flush_loop = None
        pending, self._pending = self._pending, {}
        for (method, template, status), tally in pending.items():
            REQUESTS.labels(method, template, str(status)).inc(tally.count)
            if status >= 500:
                ERRORS.labels(template).inc(tally.count)
            _observe_many(LATENCY.labels(template), tally.seconds, tally.buckets)


def _observe_many(histogram: Histogram, seconds: float, buckets: list[int]) -> None:
    """What ``observe`` once per request would have added, in one step per bucket.

    prometheus_client has no bulk observe; this writes the child's sum and per-bucket
    values (``_sum``, ``_buckets``: non-cumulative counts, one per bound and +Inf) as its
    own ``observe`` does. tests/test_app.py checks the exposition it produces.
    """
    histogram._sum.inc(seconds)
    for value, count in zip(histogram._buckets, buckets, strict=True):
        if count:
            value.inc(count)


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
