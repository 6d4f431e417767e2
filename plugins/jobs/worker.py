"""``tessera worker``: a process that carries out deliveries and workflow runs."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from kernel.commands import Command
from kernel.config import Settings
from kernel.runtime import Tessera

ROLE = "jobs.role"


class WorkerCommand(Command):
    name = "worker"
    help = "run job workers: webhook deliveries and workflow runs"

    def run(self, args: argparse.Namespace, settings: Settings) -> int:
        asyncio.run(serve(settings))
        return 0


async def serve(settings: Settings) -> None:
    tessera = Tessera.build(settings)
    tessera.state[ROLE] = "worker"
    await tessera.start()
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    print("tessera worker: ready", file=sys.stderr, flush=True)
    try:
        await stopping.wait()
    finally:
        await tessera.stop()
