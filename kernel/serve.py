"""``tessera serve``'s processes: uvicorn (uvloop, httptools) in one process or in several.

With several workers, uvicorn's own supervisor shares one listening socket between them,
and uvloop accepts every pending connection at once: whichever worker wakes first takes
most of a burst of new keep-alive connections and keeps them, so under load one worker is
saturated while the other idles. Here every worker listens on its own socket bound with
``SO_REUSEPORT`` to the same address, and the kernel spreads new connections across them.

The supervisor (this process) only checks the address is free, reserves the port (a bound
socket that never listens, so it takes no connections), starts the workers, restarts one
that dies, and on SIGINT or SIGTERM asks them all to finish their requests and stop.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import signal
import socket
import threading
import time
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from types import FrameType

import uvicorn

from kernel.config import Settings
from kernel.errors import ConfigError
from kernel.http_protocol import HttpProtocol

APP_FACTORY = "kernel.api.app:create_app_from_environment"
#: How long a worker may take to finish its requests after being asked to stop.
STOP_GRACE_SECONDS = 30.0
#: A worker that dies sooner than this after starting died "at start"...
QUICK_DEATH_SECONDS = 5.0
#: ... and after this many such deaths in a row the supervisor gives up (a crash loop).
QUICK_DEATHS_ALLOWED = 5

log = logging.getLogger("tessera.serve")


class AddressInUse(Exception):
    """The host and port to serve on are taken; the message says which."""


@dataclass(frozen=True, slots=True)
class ServeOptions:
    host: str
    port: int
    log_level: str


def require_shared_secret(settings: Settings) -> None:
    """Refuse several workers without a configured ``secret_key``: every process that
    serves a deployment must sign tokens and cursors with the same key, and a key
    generated on one machine is unknown to the others (raises :class:`ConfigError`)."""
    if settings.workers > 1 and settings.secret_key is None:
        raise ConfigError(
            f"config: secret_key: required to serve with {settings.workers} workers "
            "(set TESSERA_SECRET_KEY or secret_key in tessera.toml, the same on every "
            "machine)"
        )


def _uvicorn_config(options: ServeOptions) -> uvicorn.Config:
    return uvicorn.Config(
        APP_FACTORY,
        factory=True,
        host=options.host,
        port=options.port,
        loop="uvloop",
        http=HttpProtocol,  # httptools; a response head leaves with its first body part
        log_level=options.log_level,
        access_log=False,
        server_header=False,  # no "server: uvicorn" on every response
    )


def serve_single(options: ServeOptions) -> None:
    """One process: uvicorn binds, serves and handles signals itself.

    Once it has shut down, uvicorn raises the signal that stopped it again, with the handler
    that was in place before it started. SIGTERM's default would end the process on the
    spot, skipping the caller's cleanup (stopping the embedded PostgreSQL); here it ends
    ``serve_single`` instead, as a clean stop, like the supervisor's."""
    previous = signal.signal(signal.SIGTERM, _stop_serving)
    try:
        uvicorn.Server(_uvicorn_config(options)).run()
    except _Stopped:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)


class _Stopped(Exception):
    """SIGTERM arrived (again) after uvicorn's own shutdown."""


def _stop_serving(signum: int, frame: object) -> None:
    raise _Stopped


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _reuseport_socket(host: str, port: int) -> socket.socket:
    sock = socket.socket(_family(host), socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def reserve_port(host: str, port: int) -> socket.socket:
    """A bound, non-listening ``SO_REUSEPORT`` socket holding ``host:port`` (port 0 picks a
    free one). Raises :class:`AddressInUse` when anything already listens there, including
    another Tessera (``SO_REUSEPORT`` alone would let two deployments share the port)."""
    probe = socket.socket(_family(host), socket.SOCK_STREAM)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))
        port = probe.getsockname()[1]
    except OSError as error:
        raise AddressInUse(f"cannot listen on {host}:{port}: {error.strerror}") from None
    finally:
        probe.close()
    return _reuseport_socket(host, port)


def _work(options: ServeOptions) -> None:
    """A worker process: its own listening socket on the shared address, then uvicorn."""
    sock = _reuseport_socket(options.host, options.port)
    sock.listen(2048)
    uvicorn.Server(_uvicorn_config(options)).run(sockets=[sock])


class Supervisor:
    """Keeps ``workers`` worker processes serving ``options`` until told to stop."""

    def __init__(self, options: ServeOptions, workers: int) -> None:
        self.options = options
        self.workers = workers
        self._context = multiprocessing.get_context("spawn")
        self._processes: list[BaseProcess] = []
        self._started: dict[int, float] = {}
        self._stopping = threading.Event()
        self._quick_deaths = 0

    def run(self) -> int:
        """Serve until SIGINT/SIGTERM (exit status 0) or until workers keep dying at start
        (exit status 1). A worker that dies is replaced."""
        previous = {
            signum: signal.signal(signum, self._ask_to_stop)
            for signum in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            for _ in range(self.workers):
                self._processes.append(self._start())
            return self._watch()
        finally:
            self._stop_all()
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _start(self) -> BaseProcess:
        process = self._context.Process(target=_work, args=(self.options,), name="tessera-worker")
        process.start()
        assert process.pid is not None
        self._started[process.pid] = time.monotonic()
        return process

    def _watch(self) -> int:
        while not self._stopping.wait(0.5):
            for index, process in enumerate(self._processes):
                if process.is_alive():
                    continue
                assert process.pid is not None
                lived = time.monotonic() - self._started.pop(process.pid, 0.0)
                self._quick_deaths = self._quick_deaths + 1 if lived < QUICK_DEATH_SECONDS else 0
                if self._quick_deaths > QUICK_DEATHS_ALLOWED:
                    log.error("workers keep exiting right after starting; stopping")
                    return 1
                log.warning("worker %s exited with %s; restarting", process.pid, process.exitcode)
                self._processes[index] = self._start()
        return 0

    def _ask_to_stop(self, signum: int, frame: FrameType | None) -> None:
        self._stopping.set()

    def _stop_all(self) -> None:
        for process in self._processes:
            if process.is_alive() and process.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    # uvicorn finishes in-flight requests on SIGTERM, then runs the lifespan.
                    process.terminate()
        for process in self._processes:
            process.join(STOP_GRACE_SECONDS)
            if process.is_alive():
                process.kill()
                process.join()


def serve_workers(options: ServeOptions, workers: int) -> int:
    """Several worker processes, one ``SO_REUSEPORT`` socket each; returns the exit status."""
    reservation = reserve_port(options.host, options.port)
    try:
        port = reservation.getsockname()[1]
        supervisor = Supervisor(
            ServeOptions(options.host, port, options.log_level), workers=workers
        )
        return supervisor.run()
    finally:
        reservation.close()
