"""Carrying out one workflow run: claim it, run its actions in order, record every step."""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from kernel import TesseraError
from plugins.jobs.actions import WorkflowContext
from plugins.jobs.metrics import RUNS

if TYPE_CHECKING:
    from plugins.jobs.host import JobHost

log = logging.getLogger(__name__)

CLAIM = """
    UPDATE tessera.workflow_runs
       SET status = 'running', attempts = attempts + 1, lease_expires_at = now() + $2,
           started_at = now()
     WHERE id = $1
       AND ((status = 'pending' AND next_attempt_at <= now())
         OR (status = 'running' AND lease_expires_at < now()))
    RETURNING id, workflow_id, project_id, input, depth
"""
# A run may take several actions; its claim lasts this many delivery timeouts.
RUN_LEASE_FACTOR = 6


async def run_workflow(host: JobHost, run_id: int) -> None:
    config = host.config
    lease = timedelta(seconds=(config.delivery_timeout + config.lease_margin) * RUN_LEASE_FACTOR)
    pool = host.tessera.db.pool
    async with pool.acquire() as conn:
        run = await conn.fetchrow(CLAIM, run_id, lease)
        if run is None:
            return
        workflow = await conn.fetchrow(
            "SELECT actions, active FROM tessera.workflows WHERE id = $1", run["workflow_id"]
        )
    started = time.monotonic()
    if workflow is None or not workflow["active"]:
        await _finish(host, run_id, "failed", [], "the workflow was deleted or disabled", started)
        return
    context = WorkflowContext(
        tessera=host.tessera,
        host=host,
        project_id=run["project_id"],
        workflow_id=run["workflow_id"],
        run_id=run_id,
        depth=run["depth"],
        event=run["input"],
    )
    steps: list[dict[str, Any]] = []
    for index, spec in enumerate(workflow["actions"]):
        step_started = time.monotonic()
        step: dict[str, Any] = {"index": index, "type": spec.get("type")}
        try:
            action_class = host.tessera.workflow_actions[spec["type"]]
            action = action_class(action_class.Options.model_validate(spec.get("options", {})))
            step["result"] = await action.run(context)
            step["status"] = "succeeded"
        except Exception as error:
            step["status"] = "failed"
            step["error"] = _describe(error)
            step["duration_ms"] = _ms(step_started)
            steps.append(step)
            await _finish(
                host, run_id, "failed", steps, f"step {index + 1} failed: {step['error']}", started
            )
            return
        step["duration_ms"] = _ms(step_started)
        steps.append(step)
    await _finish(host, run_id, "succeeded", steps, None, started)


def _describe(error: Exception) -> str:
    if isinstance(error, TesseraError):
        return "; ".join(
            f"{item.field + ': ' if item.field else ''}{item.message}" for item in error.items
        )
    if isinstance(error, KeyError):
        return f"unknown action type {error.args[0]!r}"
    log.exception("workflow action failed")
    return f"{type(error).__name__}: {error}"


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


async def _finish(
    host: JobHost,
    run_id: int,
    status: str,
    steps: list[dict[str, Any]],
    error: str | None,
    started: float,
) -> None:
    async with host.tessera.db.pool.acquire() as conn:
        await conn.execute(
            "UPDATE tessera.workflow_runs SET status = $2, steps = $3, error = $4,"
            " lease_expires_at = NULL, finished_at = now(), duration_ms = $5 WHERE id = $1",
            run_id,
            status,
            steps,
            error,
            _ms(started),
        )
    RUNS.labels(status).inc()
