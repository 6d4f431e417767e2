"""CPU used by the server, PostgreSQL and the load generator while an operation is measured.

Usage is user + system time over wall time, in percent of one core (a two-core machine tops
out at 200 %).
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol

import psutil


class CpuSource(Protocol):
    """Something whose CPU seconds can be read at the start and end of a window."""

    def start(self) -> None: ...

    def seconds(self) -> float:
        """CPU seconds used since :meth:`start`."""
        ...


def _cpu_seconds(pid: int) -> float | None:
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return None
    return times.user + times.system


class ProcessGroup:
    """Processes found by ``find``, looked up again at the end so that processes born during
    the window count too."""

    def __init__(self, find: Callable[[], Iterable[int]]) -> None:
        self.find = find
        self._before: dict[int, float] = {}

    def start(self) -> None:
        self._before = {pid: cpu for pid in self.find() if (cpu := _cpu_seconds(pid)) is not None}

    def seconds(self) -> float:
        used = 0.0
        for pid in self.find():
            now = _cpu_seconds(pid)
            if now is not None:
                used += now - self._before.get(pid, 0.0)
        return used


class ResourceUsage:
    """CPU that ``getrusage`` reports: ``RUSAGE_SELF`` for this process (the floor's
    client), ``RUSAGE_CHILDREN`` for children that ended and were waited for within the
    window (wrk, whose CPU is only known once it has exited)."""

    def __init__(self, who: int) -> None:
        self.who = who
        self._before = 0.0

    def start(self) -> None:
        self._before = self._now()

    def seconds(self) -> float:
        return self._now() - self._before

    def _now(self) -> float:
        usage = resource.getrusage(self.who)
        return usage.ru_utime + usage.ru_stime


def process_tree(root: int, exclude: Callable[[], set[int]] = set) -> Callable[[], list[int]]:
    """A finder for ``root`` and its descendants, minus the pids ``exclude`` returns."""

    def find() -> list[int]:
        try:
            process = psutil.Process(root)
            pids = [root, *(child.pid for child in process.children(recursive=True))]
        except psutil.NoSuchProcess:
            return []
        excluded = exclude()
        return [pid for pid in pids if pid not in excluded]

    return find


def postmaster_pid(backend_pid: int) -> int | None:
    """The PostgreSQL server's main process, the parent of one of its backends; None when the
    server is not on this machine or not visible."""
    try:
        parent = psutil.Process(backend_pid).parent()
    except psutil.Error:
        return None
    return parent.pid if parent is not None else None


class CpuMeter:
    """Measures named sources between :meth:`start` and :meth:`stop`."""

    def __init__(self, sources: dict[str, CpuSource]) -> None:
        self.sources = sources
        self._started = 0.0
        self._machine: Any = None

    def start(self) -> None:
        for source in self.sources.values():
            source.start()
        self._machine = psutil.cpu_times()
        self._started = time.monotonic()

    def stop(self) -> dict[str, float]:
        """Percent of one core per source; ``machine``: every busy core, in the same unit;
        ``others``: what the machine spent outside the sources (other work on the machine,
        the kernel's own threads): a run with large ``others`` was disturbed."""
        wall = max(time.monotonic() - self._started, 1e-9)
        usage = {
            name: round(100 * source.seconds() / wall, 1) for name, source in self.sources.items()
        }
        end = psutil.cpu_times()
        total = sum(end) - sum(self._machine)
        idle = (end.idle + end.iowait) - (self._machine.idle + self._machine.iowait)
        busy = 1 - idle / total if total > 0 else 0.0
        machine = round(100 * busy * (os.cpu_count() or 1), 1)
        usage["others"] = round(max(0.0, machine - sum(usage.values())), 1)
        usage["machine"] = machine
        return usage
