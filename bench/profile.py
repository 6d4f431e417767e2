"""``BENCH_PROFILE=1``: py-spy samples the server while each operation is measured.

Each operation leaves ``bench/results/profile-<op>.txt`` (collapsed stacks: open it in
https://www.speedscope.app or feed it to flamegraph.pl) and a summary on stderr: where the
workers spend their time, by innermost function and by Tessera function (kernel/, plugins/)
including what it calls.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

TESSERA_PACKAGES = ("kernel/", "plugins/")


class ProfilerMissing(Exception):
    """py-spy is not installed."""


def start_profiler(pid: int, seconds: float, output: Path) -> subprocess.Popen[bytes]:
    """Sample ``pid`` and its subprocesses (the uvicorn workers) for ``seconds``."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(py_spy).exists():
        raise ProfilerMissing("BENCH_PROFILE needs py-spy: pip install -e '.[bench]'")
    command = [
        py_spy,
        *("record", "--pid", str(pid), "--subprocesses", "--nonblocking", "--nolineno"),
        # Only samples holding the GIL: CPU work, not threads waiting on a condition.
        *("--gil", "--format", "raw", "--duration", str(max(1, round(seconds)))),
        *("--output", str(output)),
    ]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def finish_profiler(process: subprocess.Popen[bytes], seconds: float) -> None:
    _, stderr = process.communicate(timeout=seconds + 60)
    if process.returncode != 0:
        message = stderr.decode(errors="replace").strip()
        print(f"bench: py-spy failed: {message[-500:]}", file=sys.stderr)


def _frames(stack: str) -> list[str]:
    # The first frames name the process and thread; the rest are "function (file)".
    return [frame for frame in stack.split(";") if frame.endswith(")") and " (" in frame]


def summarize(path: Path, top: int = 12) -> str:
    """The hottest functions of a collapsed-stack file, as text."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        frames = _frames(stack)
        if not frames:
            continue
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            if any(package in frame for package in TESSERA_PACKAGES):
                inclusive[frame] += count
    if not total:
        return "  (no samples)"
    lines = [f"  {total} samples; innermost functions (self time):"]
    lines += [f"    {100 * n / total:5.1f}%  {frame}" for frame, n in own.most_common(top)]
    lines.append("  Tessera functions (including what they call):")
    lines += [f"    {100 * n / total:5.1f}%  {frame}" for frame, n in inclusive.most_common(top)]
    return "\n".join(lines)
