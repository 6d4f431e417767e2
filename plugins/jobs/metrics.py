"""Prometheus metrics of the jobs plugin (exposed at ``/metrics``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

QUEUE_DEPTH = Gauge(
    "tessera_jobs_queue_depth", "Deliveries and workflow runs waiting to be carried out", ["kind"]
)
DELIVERIES = Counter(
    "tessera_webhook_deliveries_total", "Webhook delivery attempts by outcome", ["status"]
)
DELIVERY_FAILURES = Counter(
    "tessera_webhook_delivery_failures_total", "Deliveries that failed for good"
)
RUNS = Counter("tessera_workflow_runs_total", "Finished workflow runs by status", ["status"])
DISPATCH_FAILURES = Counter(
    "tessera_dispatch_failures_total",
    "Events that could not be given to a webhook or workflow (recorded failed)",
    ["kind"],
)
