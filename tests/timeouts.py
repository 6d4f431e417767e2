"""A test that runs past its timeout fails with the stack of every asyncio task printed.

pytest-timeout ([tool.pytest.ini_options] ``timeout``, ``timeout_method = "signal"``) fails
a test that runs too long and prints the stacks of the process's threads; for a test awaiting
something that never comes, those show only the event loop sitting in ``select()``. This
plugin (loaded by tests/conftest.py) wraps its SIGALRM handler so that, first, every task of
the running loop is printed with the ``await`` it is suspended at — which task waits on
which is then readable from a CI log.
"""

from __future__ import annotations

import asyncio
import io
import signal
import threading
from collections.abc import Generator
from typing import Any

import pytest


@pytest.hookimpl(wrapper=True)
def pytest_timeout_set_timer(item: pytest.Item, settings: Any) -> Generator[None, Any, Any]:
    """After pytest-timeout arms its SIGALRM handler, put the task dump in front of it."""
    armed = yield
    if settings.method == "signal" and threading.current_thread() is threading.main_thread():
        fail = signal.getsignal(signal.SIGALRM)
        if callable(fail):

            def dump_then_fail(signum: int, frame: Any) -> None:
                __tracebackhide__ = True
                item.config.get_terminal_writer().write(asyncio_tasks_report())
                fail(signum, frame)

            signal.signal(signal.SIGALRM, dump_then_fail)
    return armed


def asyncio_tasks_report() -> str:
    """Every task of the loop running on this thread, each with its suspended stack; an
    empty string when no loop runs (a synchronous test)."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return ""
    tasks = sorted(asyncio.all_tasks(loop), key=lambda task: task.get_name())
    report = io.StringIO()
    report.write(f"\n{'+' * 30} asyncio tasks ({len(tasks)}) {'+' * 30}\n")
    for task in tasks:
        report.write(f"\n--- {task!r}\n")
        task.print_stack(file=report)
    report.write(f"{'+' * 30} end of asyncio tasks {'+' * 30}\n")
    return report.getvalue()
