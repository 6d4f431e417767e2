"""Stopping background tasks at shutdown: bounded, and never the end of shutdown.

A process's background loops (the outbox pruner, the schema op reconciler, the jobs
dispatcher, a bus listener, ...) are cancelled when it stops. :func:`stop_tasks` cancels
them and waits at most ``timeout`` seconds: a task that swallows its cancellation is left
running (logged) instead of blocking ``stop()`` for ever, and one that ends with an error
other than its cancellation is logged instead of skipping the rest of shutdown. Its caller
then closes what the tasks used (pools, buses, locks) whatever became of them, each with
:func:`stop_step`, which bounds a step the same way and logs instead of raising.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Iterable
from typing import Any

log = logging.getLogger(__name__)


async def stop_tasks(tasks: Iterable[asyncio.Task[Any]], *, within: float) -> None:
    """Cancel ``tasks`` and wait up to ``within`` seconds for all of them to end.

    Never raises for what the tasks did: a task that failed (before or on its
    cancellation) or is still running at the deadline is logged by name. Cancelling the
    caller while it waits still cancels the caller.
    """
    tasks = list(tasks)
    if not tasks:
        return
    for task in tasks:
        task.cancel()
    done, pending = await asyncio.wait(tasks, timeout=within)
    for task in done:
        if task.cancelled():
            continue
        error = task.exception()
        if error is not None:
            log.error("background task %s failed", task.get_name(), exc_info=error)
    for task in pending:
        log.error(
            "background task %s did not stop within %s s of its cancellation; left running",
            task.get_name(),
            within,
        )


#: Seconds a step cancelled at its deadline gets to finish its cleanup.
CANCELLED_STEP_GRACE = 1.0


async def stop_step(step: str, stopping: Awaitable[object], *, within: float | None = None) -> None:
    """Await one step of a shutdown (closing a pool, a client, a lock, a plugin's
    ``shutdown`` hook), at most ``within`` seconds when given.

    Never raises for what the step did: a failure is logged naming ``step``, and a step
    still running at the deadline is cancelled and logged, so the steps after it still run
    (one that swallows its cancellation is left running). Cancelling the caller while it
    waits cancels the step and the caller.
    """
    task = asyncio.ensure_future(stopping)
    try:
        done, _ = await asyncio.wait({task}, timeout=within)
    except asyncio.CancelledError:
        task.cancel()
        raise
    if not done:
        task.cancel()
        log.error("stopping: %s did not finish within %s s; cancelled", step, within)
        # Let its cleanup (``finally`` blocks) run before the steps after it close what it
        # may still use; one that swallows its cancellation is not waited for longer.
        await asyncio.wait({task}, timeout=CANCELLED_STEP_GRACE)
    elif task.cancelled():
        log.error("stopping: %s was cancelled", step)
    elif task.exception() is not None:
        log.error("stopping: %s failed", step, exc_info=task.exception())
