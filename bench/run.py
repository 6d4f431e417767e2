"""``python -m bench``: provision, start, seed, measure every operation and its floor, report."""

from __future__ import annotations

import asyncio
import resource
import subprocess
import sys
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from bench import ops as operations
from bench import seed as seeding
from bench.cpu import (
    CpuMeter,
    ProcessGroup,
    ResourceUsage,
    postmaster_pid,
    process_tree,
)
from bench.database import BenchDatabase, provision, redact
from bench.floor import floor_rows, run_floor
from bench.loadgen import (
    LoadGeneratorMissing,
    LoadResult,
    finish_wrk,
    start_wrk,
    wrk_path,
    wrk_version,
)
from bench.ops import Operation
from bench.profile import ProfilerMissing, finish_profiler, start_profiler, summarize
from bench.report import OpResult, commit, machine, now, table, versions, write_json
from bench.server import ADMIN_EMAIL, ADMIN_PASSWORD, RunningServer, ServerFailed, tessera_server
from bench.settings import BenchSettings, SettingsError, load

#: CPU (percent of one core) spent outside the measured processes above which a
#: measurement is reported as disturbed.
DISTURBED_OTHERS = 25.0


async def _server_facts(url: str) -> tuple[str, int | None]:
    """PostgreSQL's version and the pid of its main process (None when not visible)."""
    conn = await asyncpg.connect(url)
    try:
        version = await conn.fetchval("SHOW server_version")
        # Asked while connected: the backend is alive, and its parent is the postmaster.
        return version, postmaster_pid(await conn.fetchval("SELECT pg_backend_pid()"))
    finally:
        await conn.close()


def probe(
    server: RunningServer, dataset: seeding.Dataset, op: Operation, database_url: str
) -> None:
    """One request like the operation's; a wrong status, a page whose include came back
    empty, or a page that is not the floor's rows for the same arguments stops the run
    before it measures."""
    method, path, body = op.probe
    header, value = dataset.credentials(op.credential)
    with httpx.Client(base_url=server.base_url, timeout=30.0) as client:
        response = client.request(method, path, json=body, headers={header: value})
    if response.status_code != op.expect_status:
        raise RuntimeError(
            f"{op.name}: {method} {path} answered {response.status_code}, "
            f"expected {op.expect_status}: {response.text[:500]}"
        )
    if op.probe_include is not None:
        page = response.json()["data"]
        if not page or any(record[op.probe_include] is None for record in page):
            raise RuntimeError(f"{op.name}: {method} {path}: {op.probe_include} not expanded")
    if op.probe_floor_args is not None:
        expected = floor_rows(database_url, op, op.probe_floor_args)[: seeding.PAGE_SIZE]
        difference = page_difference(response.json()["data"], expected)
        if difference is not None:
            raise RuntimeError(f"{op.name}: {method} {path}: not the floor's rows: {difference}")


def page_difference(page: list[dict[str, Any]], rows: list[dict[str, Any]]) -> str | None:
    """Where a page of JSON records differs from the floor's ``rows`` (None: nowhere);
    timestamps are compared as instants (the JSON has their ISO text)."""
    if len(page) != len(rows):
        return f"{len(page)} records, the floor {len(rows)} rows"
    if not rows:
        return "no rows to compare: probe another argument"
    for index, (record, row) in enumerate(zip(page, rows, strict=True)):
        if set(record) != set(row):
            return f"record {index} has {sorted(record)}, the floor {sorted(row)}"
        for key, value in row.items():
            given = record[key]
            if isinstance(value, datetime) and isinstance(given, str):
                given = datetime.fromisoformat(given)
            if given != value:
                return f"record {index}: {key} = {record[key]!r}, the floor {value!r}"
    return None


class Runner:
    """Measures operations against one running server and database."""

    def __init__(
        self,
        settings: BenchSettings,
        server: RunningServer,
        database_url: str,
        dataset: seeding.Dataset,
        postmaster: int | None,
        work_dir: Path,
    ) -> None:
        self.settings = settings
        self.server = server
        self.database_url = database_url
        self.dataset = dataset
        self.postgres = ProcessGroup(process_tree(postmaster)) if postmaster is not None else None
        self.work_dir = work_dir

    def _meter(self, **sources: Any) -> CpuMeter:
        if self.postgres is not None:
            sources["postgres"] = self.postgres
        return CpuMeter(sources)

    def _wrk(self, op: Operation, data_file: Path | None, seconds: float) -> subprocess.Popen[str]:
        return start_wrk(
            self.server.base_url,
            script=op.script,
            path=op.path,
            credentials=self.dataset.credentials(op.credential),
            data_file=data_file,
            concurrency=self.settings.concurrency,
            threads=self.settings.wrk_threads,
            seconds=seconds,
        )

    def _server(self) -> ProcessGroup:
        return ProcessGroup(process_tree(self.server.pid))

    def _tessera(self, op: Operation) -> tuple[LoadResult, dict[str, float]]:
        """wrk against Tessera: warm-up, then the measured run (profiled on request)."""
        settings = self.settings
        data_file = None
        if op.data:
            data_file = self.work_dir / f"{op.name}.txt"
            data_file.write_text("\n".join(op.data) + "\n")
        warmup = finish_wrk(self._wrk(op, data_file, settings.warmup), settings.warmup)
        if warmup.errors:
            print(f"bench: {op.name}: {warmup.errors} errors while warming up", file=sys.stderr)
        profiler = None
        profile_path = settings.results_dir / f"profile-{op.name}.txt"
        if settings.profile:
            profiler = start_profiler(self.server.pid, settings.duration, profile_path)
        meter = self._meter(
            server=self._server(), generator=ResourceUsage(resource.RUSAGE_CHILDREN)
        )
        wrk = self._wrk(op, data_file, settings.duration)
        meter.start()
        result = finish_wrk(wrk, settings.duration)
        cpu = meter.stop()
        if profiler is not None:
            finish_profiler(profiler, settings.duration)
            print(f"bench: {op.name} profile:\n{summarize(profile_path)}", file=sys.stderr)
        return result, cpu

    def measure(self, op: Operation) -> OpResult:
        """Probe, then measure ``op`` on Tessera and its floor."""
        settings = self.settings
        probe(self.server, self.dataset, op, self.database_url)
        result, tessera_cpu = self._tessera(op)
        # The server is metered during the floor too: its background work (the outbox
        # dispatcher reads the floor's events) must not pass for other work on the machine.
        floor, floor_cpu = run_floor(
            self.database_url,
            op,
            self._meter(client=ResourceUsage(resource.RUSAGE_SELF), server=self._server()),
            concurrency=settings.concurrency,
            pool_size=settings.floor_pool_size,
            warmup=settings.warmup,
            seconds=settings.duration,
        )
        outcome = OpResult(op.name, op.goal, result, floor, tessera_cpu, floor_cpu)
        _say(op.name, result, floor, outcome.ratio)
        busy = max(tessera_cpu["others"], floor_cpu["others"])
        if busy > DISTURBED_OTHERS:
            print(
                f"bench: {op.name}: other work used {busy:.0f} % of a core meanwhile; "
                "the numbers are disturbed",
                file=sys.stderr,
            )
        return outcome


def _say(name: str, tessera: LoadResult, floor: LoadResult, ratio: float) -> None:
    errors = f", {tessera.errors} errors" if tessera.errors else ""
    print(
        f"bench: {name}: {tessera.rps:,.0f} req/s (p99 {tessera.p99_ms:.1f} ms{errors}); "
        f"floor {floor.rps:,.0f}/s; ratio {ratio:.2f}",
        file=sys.stderr,
    )


def _meta(
    settings: BenchSettings,
    database: BenchDatabase,
    postgres_version: str,
    started: str,
    machine_at_start: dict[str, Any],
) -> dict[str, Any]:
    field, op, value = seeding.LIST_FILTER
    return {
        "started_at": started,
        "finished_at": now(),
        "commit": commit(),
        "machine": machine_at_start,
        "versions": versions(postgres_version, wrk_version()),
        "workers": settings.workers,
        "concurrency": settings.concurrency,
        "pool_size_per_worker": settings.pool_size,
        "floor_pool_size": settings.floor_pool_size,
        "duration_s": settings.duration,
        "warmup_s": settings.warmup,
        "wrk_threads": settings.wrk_threads,
        "rows": settings.rows,
        "customers": seeding.CUSTOMER_COUNT,
        "database": {"kind": database.kind, "url": redact(database.url)},
        "policy": seeding.POLICY,
        "list_query": {
            "filter": f"{field} {op} {value}",
            "sort": seeding.LIST_SORT,
            "limit": seeding.PAGE_SIZE,
            "deep_from_row": seeding.DEEP_FROM_ROW,
        },
        "indexes": list(seeding.INDEXES),
        "view": seeding.VIEW_DEFINITION,
        "profiled": settings.profile,
    }


def run(settings: BenchSettings) -> list[OpResult]:
    started, machine_at_start = now(), machine()
    with (
        tempfile.TemporaryDirectory(prefix="tessera-bench-") as tmp,
        provision(settings.database_url, settings.database_url_explicit, Path(tmp)) as database,
    ):
        work_dir = Path(tmp)
        postgres_version, postmaster = asyncio.run(_server_facts(database.url))
        with tessera_server(
            database.url, work_dir, workers=settings.workers, pool_size=settings.pool_size
        ) as server:
            dataset = seeding.seed(
                server.base_url, database.url, settings.rows, ADMIN_EMAIL, ADMIN_PASSWORD
            )
            runner = Runner(settings, server, database.url, dataset, postmaster, work_dir)
            results = [
                runner.measure(op) for op in operations.build(dataset) if op.name in settings.ops
            ]
        meta = _meta(settings, database, postgres_version, started, machine_at_start)
    write_json(settings.results_dir / "latest.json", results, meta)
    return results


def main() -> int:
    try:
        settings = load(operations.NAMES)
        wrk_path()
    except (SettingsError, LoadGeneratorMissing) as error:
        print(f"bench: {error}", file=sys.stderr)
        return 2
    print(
        f"bench: {settings.workers} workers, concurrency {settings.concurrency}, "
        f"{settings.duration:g} s per op after {settings.warmup:g} s warm-up",
        file=sys.stderr,
    )
    try:
        results = run(settings)
    except (ServerFailed, ProfilerMissing, RuntimeError) as error:
        print(f"bench: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    print(table(results))
    print(f"\nwritten: {settings.results_dir / 'latest.json'}", file=sys.stderr)
    return 0
