"""``JobHost``: the job machinery of one process (API server or ``tessera worker``).

Every host runs the dispatcher and the sweeper (only the one holding the leader lock does
work). A consuming host also runs dramatiq workers. Actors are plain functions on dramatiq
threads; they hand their work to the host's event loop, where the kernel's database pool
lives, and wait for it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import dramatiq
import httpx
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker

from kernel import KernelSurface, stop_step, stop_tasks
from plugins.jobs.config import JobsConfig
from plugins.jobs.delivery import deliver
from plugins.jobs.dispatch import Dispatcher, dispatched_up_to
from plugins.jobs.leader import LeaderLock
from plugins.jobs.runner import run_workflow
from plugins.jobs.sweeper import Sweeper

log = logging.getLogger(__name__)

QUEUE = "tessera"
# Whole seconds an actor may spend on one item before dramatiq gives up on it.
ACTOR_TIME_LIMIT_MS = 10 * 60 * 1000


class JobHost:
    def __init__(self, tessera: KernelSurface, config: JobsConfig, *, consume: bool) -> None:
        self.tessera = tessera
        self.config = config
        self.consume = consume
        self.in_process = (
            config.in_process if config.in_process is not None else not tessera.settings.redis_url
        )
        if self.in_process:
            self.broker: dramatiq.Broker = StubBroker()
            self.broker.emit_after("process_boot")
        else:
            self.broker = RedisBroker(
                url=tessera.settings.redis_url, namespace=config.redis_namespace
            )
        self._deliver = dramatiq.actor(
            self._deliver_job,
            broker=self.broker,
            actor_name="tessera.deliver_webhook",
            queue_name=QUEUE,
            max_retries=0,
            time_limit=ACTOR_TIME_LIMIT_MS,
        )
        self._run = dramatiq.actor(
            self._run_job,
            broker=self.broker,
            actor_name="tessera.run_workflow",
            queue_name=QUEUE,
            max_retries=0,
            time_limit=ACTOR_TIME_LIMIT_MS,
        )
        self.leader = LeaderLock(tessera, retry_interval=self.config.poll_interval)
        self.wake = asyncio.Event()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.http: httpx.AsyncClient | None = None
        self._worker: dramatiq.Worker | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.dispatcher = Dispatcher(self)

    # -- lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.http = httpx.AsyncClient(follow_redirects=False)
        self.tessera.bus.subscribe("events", lambda _payload: self.wake.set())
        await self.dispatcher.ensure_cursor()
        self.tessera.event_retention.keep_unread("jobs.dispatcher", dispatched_up_to)
        self._tasks = [
            asyncio.create_task(self.dispatcher.run(), name="jobs-dispatcher"),
            asyncio.create_task(Sweeper(self).run(), name="jobs-sweeper"),
        ]
        if self.consume or self.in_process:
            self._worker = dramatiq.Worker(
                self.broker, queues={QUEUE}, worker_threads=self.config.worker_threads
            )
            self._worker.start()

    async def stop(self) -> None:
        """Stop the loops and the workers, bounded by ``shutdown_timeout_seconds`` (see
        :func:`kernel.stop_tasks`), then always release the leader lock and close the HTTP
        client and the broker. Worker threads still busy at the deadline are left to end
        with the process (they are daemon threads)."""
        timeout = self.tessera.settings.shutdown_timeout_seconds
        await stop_tasks(self._tasks, within=timeout)
        self._tasks = []
        if self._worker is not None:
            # dramatiq applies its timeout twice (workers, then consumers): half each.
            stop_worker = functools.partial(self._worker.stop, timeout=int(timeout * 500))
            await stop_step(
                "worker threads", asyncio.get_running_loop().run_in_executor(None, stop_worker)
            )
        await stop_step("leader lock", self.leader.release())
        if self.http is not None:
            await stop_step("http client", self.http.aclose())
        self.broker.close()

    # -- enqueueing (from the loop) ----------------------------------------------------

    async def enqueue_deliveries(self, ids: list[int], delay_seconds: float = 0) -> None:
        await self._send(self._deliver, ids, delay_seconds)

    async def enqueue_runs(self, ids: list[int], delay_seconds: float = 0) -> None:
        await self._send(self._run, ids, delay_seconds)

    async def _send(self, actor: Any, ids: list[int], delay_seconds: float) -> None:
        if not ids:
            return
        delay = int(delay_seconds * 1000) or None

        def send() -> None:
            for item in ids:
                actor.send_with_options(args=(item,), delay=delay)

        await asyncio.get_running_loop().run_in_executor(None, send)

    # -- actors (on dramatiq threads) ----------------------------------------------------

    def _deliver_job(self, delivery_id: int) -> None:
        self._on_loop(deliver, delivery_id)

    def _run_job(self, run_id: int) -> None:
        self._on_loop(run_workflow, run_id)

    def _on_loop(self, work: Callable[..., Awaitable[None]], item: int) -> None:
        assert self.loop is not None
        future = asyncio.run_coroutine_threadsafe(work(self, item), self.loop)
        future.result(timeout=ACTOR_TIME_LIMIT_MS / 1000)
