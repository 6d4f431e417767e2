"""Stopping a process is bounded and complete: a background loop that swallows its
cancellation, or fails on it, and a plugin whose ``shutdown`` hook hangs or raises, are
logged, and the pools, the bus and the jobs machinery are still closed (kernel/tasks.py,
``Tessera.stop``, ``PluginSet.call_shutdown``, ``JobHost.stop``)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import pytest

from kernel.config import Settings
from kernel.db.pool import PoolClosed
from kernel.ddl.reconcile import OpReconciler
from kernel.events.retention import EventRetention
from kernel.runtime import Tessera
from plugins.jobs.dispatch import Dispatcher
from plugins.jobs.sweeper import Sweeper
from tests.fake_plugins import FakeDistributions

Loop = Callable[[Any], Coroutine[Any, Any, None]]


class Misbehaving:
    """Background loops that misbehave when cancelled, released at the end of the test."""

    def __init__(self) -> None:
        self.released = asyncio.Event()
        self.tasks: list[asyncio.Task[Any]] = []

    def stubborn(self) -> Loop:
        """A loop that swallows every cancellation until released."""

        async def run(_self: Any) -> None:
            self._track()
            while not self.released.is_set():
                try:
                    await self.released.wait()
                except asyncio.CancelledError:
                    continue

        return run

    def failing(self) -> Loop:
        """A loop that raises another error when cancelled."""

        async def run(_self: Any) -> None:
            self._track()
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                raise RuntimeError("failed on its cancellation") from None

        return run

    def _track(self) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.tasks.append(task)

    async def release(self) -> None:
        self.released.set()
        await asyncio.gather(*self.tasks, return_exceptions=True)


@pytest.fixture
async def misbehaving() -> AsyncIterator[Misbehaving]:
    loops = Misbehaving()
    yield loops
    await loops.release()


def _settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(
        shutdown_timeout_seconds=0.2, plugin_shutdown_timeout_seconds=3, db_pool_size=2
    )


async def _assert_closed(tessera: Tessera) -> None:
    with pytest.raises(PoolClosed):
        async with tessera.db.pool.acquire():
            pass
    assert not await tessera.bus.healthy()


@pytest.mark.timeout(60)
async def test_stop_goes_past_loops_that_ignore_or_fail_their_cancellation(
    make_settings: Callable[..., Settings],
    misbehaving: Misbehaving,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Kernel loops (``Tessera.stop``) and the jobs plugin's (``JobHost.stop``) alike."""
    monkeypatch.setattr(OpReconciler, "run", misbehaving.stubborn())
    monkeypatch.setattr(EventRetention, "run", misbehaving.failing())
    monkeypatch.setattr(Sweeper, "run", misbehaving.stubborn())
    monkeypatch.setattr(Dispatcher, "run", misbehaving.failing())
    tessera = Tessera.build(_settings(make_settings))
    await tessera.start()
    host = tessera.state["jobs"]
    with caplog.at_level(logging.ERROR, logger="kernel.tasks"):
        await tessera.stop()
    for stubborn in ("op-reconciler", "jobs-sweeper"):
        assert f"background task {stubborn} did not stop within 0.2 s" in caplog.text
    for failed in ("event-retention", "jobs-dispatcher"):
        assert f"background task {failed} failed" in caplog.text
    assert "failed on its cancellation" in caplog.text
    assert host.http.is_closed
    assert host.leader._connection is None
    await _assert_closed(tessera)


async def test_a_failing_close_step_does_not_skip_the_next(
    make_settings: Callable[..., Settings],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    tessera = Tessera.build(_settings(make_settings))
    await tessera.start()

    async def broken() -> None:
        raise OSError("the notifier could not close")

    monkeypatch.setattr(tessera.events, "close", broken)
    with caplog.at_level(logging.ERROR, logger="kernel.tasks"):
        await tessera.stop()
    assert "stopping: event notifier failed" in caplog.text
    await _assert_closed(tessera)


#: A plugin whose shutdown never ends by itself; it notes its cancellation.
STUCK_PLUGIN = """
    import asyncio
    from kernel import hookimpl

    cancelled = []

    @hookimpl
    async def shutdown(tessera):
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(True)
            raise
"""

#: A plugin whose shutdown raises before returning anything.
BROKEN_PLUGIN = """
    from kernel import hookimpl

    @hookimpl
    def shutdown(tessera):
        raise RuntimeError("the broken plugin cannot stop")
"""


@pytest.mark.timeout(60)
async def test_stop_goes_past_plugins_whose_shutdown_hangs_or_raises(
    make_settings: Callable[..., Settings],
    fake_distributions: FakeDistributions,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake_distributions.add(
        "tests-misbehaving-plugins",
        {"stuck": "stuck_plugin", "broken": "broken_plugin"},
        {"stuck_plugin": STUCK_PLUGIN, "broken_plugin": BROKEN_PLUGIN},
    )
    tessera = Tessera.build(_settings(make_settings))
    assert {"stuck", "broken", "jobs"} <= set(tessera.plugins.names)
    await tessera.start()
    host = tessera.state["jobs"]
    with caplog.at_level(logging.ERROR, logger="kernel.tasks"):
        await tessera.stop()
    assert "stopping: plugin stuck: shutdown did not finish within 3.0 s; cancelled" in (
        caplog.messages
    )
    assert "stopping: plugin broken: shutdown failed" in caplog.messages
    assert "the broken plugin cannot stop" in caplog.text
    await asyncio.sleep(0)  # the stuck hook's task runs its cancellation
    assert __import__("stuck_plugin").cancelled == [True]
    # The other plugins' shutdown hooks still ran, and the kernel closed what it holds.
    assert host.http.is_closed
    await _assert_closed(tessera)
