"""CPU work per request, counted deterministically: the app driven in-process, no network.

``python -m bench.instructions`` seeds a fresh database as ``make bench`` does (through a
``tessera serve`` subprocess, then stopped), then, per operation, starts a child process
that builds the app (``create_app``), runs its lifespan, sends it warm-up requests and then
``BENCH_REQUESTS`` requests one after another, each a hand-built ASGI scope answered
through plain ``receive``/``send`` callables (the same headers wrk sends). The child runs
under ``valgrind --tool=callgrind`` and counts instructions from the first measured request
to the last only (a tiny helper compiled with the system's ``gcc`` and
``valgrind/callgrind.h`` switches instrumentation on and dumps the counts); the count per
request repeats to a fraction of a per cent however loaded the machine is, where wall-clock
and even CPU time move by 10 % or more. Instructions are not time (a cache miss costs more
than an add), but a change that removes instructions from the request's path removes time.

Modes (``BENCH_MEASURE``): ``callgrind`` (default), ``cpu`` (``time.process_time`` over the
requests, without valgrind: quicker, noisier) or ``profile`` (cProfile of the requests,
the 25 hottest functions by own time, or by ``BENCH_PROFILE_SORT``: where the
instructions go; ``BENCH_PROFILE_DIR`` keeps each operation's raw statistics there).

Only the client side of the database is counted: PostgreSQL's work is another process's.
"""

from __future__ import annotations

import cProfile
import ctypes
import io
import json
import os
import pstats
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

#: The operations this driver knows: name → how to build request ``n``'s path and query.
OPERATIONS = (
    "get_by_id",
    "list_filtered",
    "list_filtered_deep",
    "view_query",
    "create",
    "update",
    "rules_list",
)

#: Each operation's method and the status its requests must answer with.
_METHODS = {"create": ("POST", 201), "update": ("PATCH", 200)}

#: Seconds between the announcements of committed writes while writes are measured.
WRITE_ANNOUNCE_DELAY = 1.0

_YEAR_START = 1_704_067_200  # 2024-01-01T00:00:00Z, as bench/lua/create.lua

_HELPER_C = """
#include <valgrind/callgrind.h>
void measure_start(void) { CALLGRIND_START_INSTRUMENTATION; CALLGRIND_ZERO_STATS; }
void measure_stop(void) { CALLGRIND_DUMP_STATS_AT("measured"); CALLGRIND_STOP_INSTRUMENTATION; }
"""


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


# --- the child: the app in this process ----------------------------------------------------


class _Driver:
    """Sends requests to ``app`` in-process and checks each is a 200."""

    def __init__(self, app: Any, spec: dict[str, Any]) -> None:
        self.app = app
        self.spec = spec
        self.ids: list[int] = spec["ids"]
        self.headers = [
            (b"host", b"127.0.0.1:8000"),
            (spec["auth_header"].lower().encode(), spec["auth_value"].encode()),
            (b"content-type", b"application/json"),
        ]
        self.method, self.expect = _METHODS.get(spec["op"], ("GET", 200))
        self.status = 0
        self.body_bytes = 0
        self.body = b""

    def _write_body(self, n: int) -> bytes:
        """The body bench/lua's create.lua or update.lua sends, its values drawn from ``n``."""
        amount, score = (n * 7919) % 10_000, (n * 104_729) % 100_000 / 100
        if self.spec["op"] == "update":
            return f'{{"amount":{amount},"score":{score:.2f}}}'.encode()
        due_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(_YEAR_START + n * 4_099))
        return (
            f'{{"title":"bench {n}","amount":{amount},"score":{score:.2f},"due_at":"{due_at}"}}'
        ).encode()

    def scope(self, n: int) -> dict[str, Any]:
        path: str = self.spec["path"]
        query = b""
        if self.method != "GET":
            self.body = self._write_body(n)
        if self.spec["op"] in ("get_by_id", "update"):
            path = f"{path}/{self.ids[(n * 7919) % len(self.ids)]}"
        elif self.spec["op"] == "view_query":  # one customer after another, as make bench
            path = self.spec["view_path"]
            query = f"{self.spec['view_query']}{(n * 7919) % self.spec['customers'] + 1}".encode()
        elif self.spec["op"] == "list_filtered":
            query = self.spec["query"].encode()
        elif self.spec["op"] == "list_filtered_deep":  # the cursors make bench's deep pages use
            cursors = self.spec["deep_cursors"]
            cursor = urlencode({"cursor": cursors[n % len(cursors)]})
            query = f"{self.spec['query']}&{cursor}".encode()
        elif self.spec["op"] == "rules_list":  # served by FastAPI, declared late: route lookup
            path = self.spec["rules_path"]
        headers = list(self.headers)
        if self.body:
            headers.append((b"content-length", str(len(self.body)).encode()))
        return {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "server": ("127.0.0.1", 8000),
            "client": ("127.0.0.1", 40000),
            "scheme": "http",
            "method": self.method,
            "root_path": "",
            "path": path,
            "raw_path": path.encode(),
            "query_string": query,
            "headers": headers,
            "state": {},
        }

    async def _receive(self) -> dict[str, Any]:
        return {"type": "http.request", "body": self.body, "more_body": False}

    async def _send(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        else:
            self.body_bytes += len(message.get("body", b""))

    async def requests(self, start: int, count: int) -> None:
        for n in range(start, start + count):
            await self.app(self.scope(n), self._receive, self._send)
            if self.status != self.expect:
                raise RuntimeError(f"request {n}: HTTP {self.status}")


def _helper(path: str | None) -> tuple[Callable[[], None], Callable[[], None]]:
    if not path:
        return (lambda: None), (lambda: None)
    library = ctypes.CDLL(path)
    return library.measure_start, library.measure_stop


async def _child(spec: dict[str, Any]) -> dict[str, Any]:
    from kernel.api.app import create_app
    from kernel.config import load_settings

    app = create_app(load_settings(), server_process=True)
    driver = _Driver(app, spec)
    start, stop = _helper(spec.get("helper"))
    count = spec["requests"]
    async with app.router.lifespan_context(app):
        if spec["op"] in _METHODS:
            # A write announces its event after a 10 ms pause, and each announcement wakes
            # the dispatcher for a pass over the outbox: a number of passes that the wall
            # clock decides (under callgrind, 30,000 instructions per create from one run
            # to the next). Announcing once a second, as often as the dispatcher polls
            # anyway, counts a write's own work plus its share of a few batched passes.
            app.state.tessera.events.delay = WRITE_ANNOUNCE_DELAY
        await driver.requests(0, spec["warmup"])
        mode = spec["mode"]
        profiler = cProfile.Profile() if mode == "profile" else None
        cpu = time.process_time()
        start()
        if profiler is not None:
            profiler.enable()
        await driver.requests(spec["warmup"], count)
        if profiler is not None:
            profiler.disable()
        stop()
        cpu = time.process_time() - cpu
    result: dict[str, Any] = {"cpu_us": cpu / count * 1e6}
    if profiler is not None:
        out = io.StringIO()
        lines = _env_int("BENCH_PROFILE_LINES", 25)
        keep = os.environ.get("BENCH_PROFILE_DIR")
        if keep:  # the raw statistics, for pstats (callers, callees)
            os.makedirs(keep, exist_ok=True)
            profiler.dump_stats(Path(keep) / f"profile.{spec['op']}.pstats")
        order = os.environ.get("BENCH_PROFILE_SORT", "tottime")
        pstats.Stats(profiler, stream=out).sort_stats(order).print_stats(lines)
        result["profile"] = out.getvalue()
    return result


def child_main(spec_path: str) -> None:
    import uvloop

    spec = json.loads(Path(spec_path).read_text())
    result = uvloop.run(_child(spec))
    Path(spec["result"]).write_text(json.dumps(result))


# --- the parent: database, seeding, one child per operation --------------------------------


def _compile_helper(work_dir: Path) -> str:
    source = work_dir / "measure.c"
    source.write_text(_HELPER_C)
    library = work_dir / "measure.so"
    subprocess.run(["gcc", "-O1", "-shared", "-fPIC", "-o", str(library), str(source)], check=True)
    return str(library)


def _instructions(dump_dir: Path, op: str) -> int:
    """Ir of the dump written at ``measure_stop`` (callgrind.out.<pid>.1), which is kept as
    ``callgrind.<op>.out`` in ``BENCH_CALLGRIND_DIR`` when that is set."""
    dumps = [path for path in dump_dir.glob("callgrind.out.*") if path.name.endswith(".1")]
    if len(dumps) != 1:
        raise RuntimeError(f"expected one measured dump in {dump_dir}, found {dumps}")
    keep = os.environ.get("BENCH_CALLGRIND_DIR")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(dumps[0], Path(keep) / f"callgrind.{op}.out")
    found = re.search(r"^(?:summary|totals): (\d+)", dumps[0].read_text(), re.MULTILINE)
    if found is None:
        raise RuntimeError(f"no totals in {dumps[0]}")
    return int(found.group(1))


def _measure(op: str, spec: dict[str, Any], env: dict[str, str], work_dir: Path) -> dict[str, Any]:
    op_dir = work_dir / op
    op_dir.mkdir()
    spec = {**spec, "op": op, "result": str(op_dir / "result.json")}
    spec_path = op_dir / "spec.json"
    spec_path.write_text(json.dumps(spec))
    command = [sys.executable, "-m", "bench.instructions", "--child", str(spec_path)]
    if spec["mode"] == "callgrind":
        command = [
            "valgrind",
            "--tool=callgrind",
            "--instr-atstart=no",
            f"--callgrind-out-file={op_dir}/callgrind.out.%p",
            *command,
        ]
    subprocess.run(
        command,
        env=env,
        check=True,
        stderr=subprocess.DEVNULL if spec["mode"] == "callgrind" else None,
    )
    result = json.loads(Path(spec["result"]).read_text())
    if spec["mode"] == "callgrind":
        result["instructions"] = _instructions(op_dir, op) / spec["requests"]
    return result


def main() -> int:
    from bench import seed as seeding
    from bench.database import provision
    from bench.server import ADMIN_EMAIL, ADMIN_PASSWORD, tessera_server

    mode = os.environ.get("BENCH_MEASURE", "callgrind")
    ops = os.environ.get("BENCH_OPS", ",".join(OPERATIONS)).split(",")
    rows = _env_int("BENCH_ROWS", 30_000)
    url = os.environ.get("TESSERA_BENCH_DATABASE_URL")
    server_url = url or "postgresql://postgres@127.0.0.1:5432/postgres"
    with (
        tempfile.TemporaryDirectory(prefix="tessera-instructions-") as tmp,
        provision(server_url, url is not None, Path(tmp)) as database,
    ):
        work_dir = Path(tmp)
        # One secret for the seeding server and the measured app: the deep pages' cursors
        # were signed by the one and must be accepted by the other.
        secret_key = os.urandom(32).hex()
        with tessera_server(
            database.url, work_dir, workers=1, pool_size=4, secret_key=secret_key
        ) as server:
            dataset = seeding.seed(server.base_url, database.url, rows, ADMIN_EMAIL, ADMIN_PASSWORD)
        field, op, value = seeding.LIST_FILTER
        spec = {
            "mode": mode,
            "path": dataset.records_path,
            "query": urlencode(
                {f"filter[{field}][{op}]": value, "sort": seeding.LIST_SORT, "limit": 25}
            ),
            "ids": dataset.visible_ids,
            "deep_cursors": [page.cursor for page in dataset.deep_pages],
            "view_path": seeding.VIEW_PATH,
            "rules_path": (
                f"/api/projects/{seeding.PROJECT}/collections/{seeding.RULED_COLLECTION}/rules"
            ),
            "view_query": f"limit={seeding.PAGE_SIZE}&{seeding.VIEW_PARAM}=",
            "customers": seeding.CUSTOMER_COUNT,
            "auth_header": "X-API-Key",
            "auth_value": dataset.api_key,
            "warmup": _env_int("BENCH_WARMUP_REQUESTS", 300),
            "requests": _env_int("BENCH_REQUESTS", 2_000 if mode == "callgrind" else 20_000),
            "helper": _compile_helper(work_dir) if mode == "callgrind" else None,
        }
        env = {
            **os.environ,
            "TESSERA_DATABASE_URL": database.url,
            "TESSERA_DATA_DIR": str(work_dir),
            "TESSERA_SECRET_KEY": secret_key,
            "TESSERA_DB_POOL_SIZE": "4",
            "TESSERA_LOG_LEVEL": "warning",
        }
        env.pop("TESSERA_CONFIG", None)
        for op in ops:
            result = _measure(op, spec, env, work_dir)
            line = f"{op:<16} cpu {result['cpu_us']:8.1f} us/req"
            if "instructions" in result:
                line += f"   instructions {result['instructions']:12,.0f} /req"
            print(line, flush=True)
            if "profile" in result:
                print(result["profile"])
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        child_main(sys.argv[2])
    else:
        sys.exit(main())
