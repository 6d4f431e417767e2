"""``python -m soak``: a fresh database, ``tessera serve`` on 127.0.0.1, the bench's project
set up through the API, then the mix of :mod:`soak.traffic` at ``SOAK_RATE`` requests a
second for ``SOAK_DURATION`` seconds; the report on stdout. Exits 1 when any request got
an unexpected answer or none, or was never sent; 0 otherwise."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

from bench.cpu import process_tree
from bench.database import provision
from bench.seed import setup_through_api, succeeded
from bench.server import ADMIN_EMAIL, ADMIN_PASSWORD, tessera_server
from bench.settings import SettingsError
from soak.report import KindStats, Outcome, table, write_json
from soak.settings import SoakSettings, load
from soak.traffic import KINDS, RECORDS, SCRATCH, Kind, Traffic, schedule

#: Records created before the traffic starts, for the reads and updates to pick from.
SEEDED_RECORDS = 100
#: Requests in flight beyond which the next one due is not sent (counted ``unsent``): the
#: server is not keeping up with the rate.
MAX_IN_FLIGHT = 256
POOL_SIZE = 10


def prepare(base_url: str) -> Traffic:
    """The bench's project, collection, key and user, a scratch collection for the schema
    operations, and some records."""
    with httpx.Client(base_url=base_url, timeout=30.0) as client:
        key, _, user_token = setup_through_api(client, ADMIN_EMAIL, ADMIN_PASSWORD)
        credentials = {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
        token = succeeded(client.post("/api/admin/login", json=credentials), "login")["token"]
        admin = {"Authorization": f"Bearer {token}"}
        collections = RECORDS.split("/collections/")[0] + "/collections"
        scratch = {"name": SCRATCH, "fields": [{"name": "note", "type": "string"}]}
        succeeded(client.post(collections, json=scratch, headers=admin), "scratch collection")
        ids = [
            succeeded(
                client.post(RECORDS, json={"title": f"seed {n}", "amount": n}, headers=admin),
                "seed record",
            )["id"]
            for n in range(SEEDED_RECORDS)
        ]
    return Traffic(
        key_headers={"X-API-Key": key},
        user_headers={"Authorization": f"Bearer {user_token}"},
        admin_headers=admin,
        record_ids=ids,
    )


def resident_memory(pids: list[int]) -> int:
    """Bytes resident in the processes ``pids`` (those gone count nothing)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            total += psutil.Process(pid).memory_info().rss
    return total


async def _one(
    client: httpx.AsyncClient,
    kind: Kind,
    traffic: Traffic,
    stats: KindStats,
    due: float,
    serial: asyncio.Lock,
) -> None:
    request = kind.make(traffic)
    try:
        async with serial if kind.serial else contextlib.nullcontext():
            response = await client.request(
                request.method, request.path, json=request.body, headers=request.headers
            )
    except httpx.HTTPError as error:
        stats.errors[type(error).__name__] += 1
    else:
        if response.status_code != kind.expect:
            stats.errors[str(response.status_code)] += 1
        elif kind.name == "create_record":
            traffic.record_ids.append(response.json()["id"])
    stats.latencies.append((time.perf_counter() - due) * 1000)


async def drive(
    base_url: str, server_pid: int, traffic: Traffic, settings: SoakSettings
) -> Outcome:
    """Start one request every ``1 / rate`` seconds, in the mix's order, for ``duration``
    seconds, whatever the answers' pace; wait for the last ones."""
    outcome = Outcome({kind.name: KindStats(kind.served_by) for kind in KINDS})
    pids = process_tree(server_pid)
    limits = httpx.Limits(max_connections=MAX_IN_FLIGHT, max_keepalive_connections=64)
    in_flight: set[asyncio.Task[None]] = set()
    serial = asyncio.Lock()
    interval = 1.0 / settings.rate
    async with httpx.AsyncClient(base_url=base_url, timeout=30.0, limits=limits) as client:
        start = time.perf_counter()
        next_sample = start
        for number, kind in enumerate(itertools.cycle(schedule(KINDS))):
            due = start + number * interval
            if due - start >= settings.duration:
                break
            now = time.perf_counter()
            if now >= next_sample:
                outcome.rss.append(resident_memory(pids()))
                next_sample += 1.0
            if due > now:
                await asyncio.sleep(due - now)
            if len(in_flight) >= MAX_IN_FLIGHT:
                outcome.unsent += 1
                continue
            stats = outcome.kinds[kind.name]
            task = asyncio.create_task(_one(client, kind, traffic, stats, due, serial))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
        await asyncio.gather(*in_flight)
    outcome.rss.append(resident_memory(pids()))
    return outcome


def main() -> int:
    try:
        settings = load()
    except SettingsError as error:
        print(f"soak: {error}", file=sys.stderr)
        return 2
    with (
        tempfile.TemporaryDirectory(prefix="tessera-soak-") as tmp,
        provision(settings.database_url, settings.database_url_explicit, Path(tmp)) as database,
        tessera_server(
            database.url, Path(tmp), workers=settings.workers, pool_size=POOL_SIZE
        ) as server,
    ):
        traffic = prepare(server.base_url)
        print(
            f"soak: {settings.duration:.0f} s at {settings.rate:g} requests/s "
            f"against {server.base_url} ({settings.workers} worker(s))",
            file=sys.stderr,
        )
        outcome = asyncio.run(drive(server.base_url, server.pid, traffic, settings))
    print(table(outcome))
    if settings.json_path is not None:
        write_json(outcome, settings.json_path)
    return 0 if outcome.clean else 1
