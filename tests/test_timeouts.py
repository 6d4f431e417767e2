"""A hung test fails at its timeout with every asyncio task's stack printed, and the run
goes on (tests/timeouts.py over pytest-timeout): a hang is diagnosable from a CI log."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

HANGING = """
import asyncio

import pytest


async def waits_for_a_wakeup_that_never_comes(event: asyncio.Event) -> None:
    await event.wait()


@pytest.mark.timeout(2)
async def test_awaits_a_task_that_hangs() -> None:
    event = asyncio.Event()
    await asyncio.create_task(waits_for_a_wakeup_that_never_comes(event), name="the-waiter")


async def test_the_next_test_still_runs() -> None:
    await asyncio.sleep(0)
"""


def test_a_hung_test_fails_with_its_asyncio_tasks_stacks(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["tests.timeouts"]\n')
    (tmp_path / "test_hanging.py").write_text(HANGING)
    finished = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-o",
            "asyncio_mode=auto",
            "-o",
            "timeout_method=signal",
            str(tmp_path),
        ],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = finished.stdout + finished.stderr
    assert finished.returncode == 1, output
    assert "1 failed, 1 passed" in output, output
    assert "Timeout (>2.0s) from pytest-timeout" in output, output
    assert "asyncio tasks (2)" in output, output
    # The test's task, what it awaits, and the line the awaited task is stuck at.
    assert "name='the-waiter'" in output, output
    assert "in waits_for_a_wakeup_that_never_comes\n    await event.wait()" in output, output
