"""``tessera serve --workers N``: one SO_REUSEPORT socket per worker, so connections spread
across the workers; a dead worker is replaced; SIGTERM stops everything cleanly."""

from __future__ import annotations

import signal
import socket
import time
from collections import Counter
from pathlib import Path

import psutil

from tests.server import TesseraServer, run_tessera, tessera_env
from tests.services import free_port


def _env(database_url: str, data_dir: Path) -> dict[str, str]:
    return tessera_env(
        TESSERA_DATABASE_URL=database_url,
        TESSERA_DATA_DIR=str(data_dir),
        TESSERA_SECRET_KEY="serve-test-secret",
        TESSERA_LOG_LEVEL="warning",
    )


def _workers(server: TesseraServer) -> list[psutil.Process]:
    """The worker processes (not multiprocessing's resource tracker)."""
    assert server.process is not None
    children = psutil.Process(server.process.pid).children()
    return [child for child in children if "spawn_main" in " ".join(child.cmdline())]


def _listening_workers(server: TesseraServer) -> list[psutil.Process]:
    listening = []
    for worker in _workers(server):
        for connection in worker.net_connections(kind="tcp"):
            if connection.status == psutil.CONN_LISTEN and connection.laddr.port == server.port:
                listening.append(worker)
    return listening


def _keep_alive_requests(port: int, count: int) -> list[socket.socket]:
    """``count`` open connections, each having been answered once."""
    sockets = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        sockets.append(sock)
    return sockets


def _wait_for(condition: object, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


def test_each_worker_listens_and_takes_a_share_of_the_connections(
    database_url: str, tmp_path: Path
) -> None:
    with TesseraServer(_env(database_url, tmp_path), "--workers", "2") as server:
        _wait_for(lambda: len(_listening_workers(server)) == 2)
        sockets = _keep_alive_requests(server.port, 24)
        try:
            owners: Counter[int] = Counter()
            for worker in _workers(server):
                for connection in worker.net_connections(kind="tcp"):
                    if (
                        connection.status == psutil.CONN_ESTABLISHED
                        and connection.laddr.port == server.port
                    ):
                        owners[worker.pid] += 1
            assert sum(owners.values()) == 24
            # The kernel hashes each connection to a socket: both get some (a split worse
            # than 22/2 has odds of about one in 300,000).
            assert len(owners) == 2 and min(owners.values()) >= 2, owners
        finally:
            for sock in sockets:
                sock.close()


def test_a_worker_that_dies_is_replaced(database_url: str, tmp_path: Path) -> None:
    with TesseraServer(_env(database_url, tmp_path), "--workers", "2") as server:
        _wait_for(lambda: len(_listening_workers(server)) == 2)
        victim = _workers(server)[0]
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
        _wait_for(
            lambda: (
                len(_listening_workers(server)) == 2
                and victim.pid not in {worker.pid for worker in _workers(server)}
            )
        )
        for sock in _keep_alive_requests(server.port, 8):
            sock.close()


def test_sigterm_stops_the_supervisor_and_its_workers(database_url: str, tmp_path: Path) -> None:
    with TesseraServer(_env(database_url, tmp_path), "--workers", "2") as server:
        _wait_for(lambda: len(_listening_workers(server)) == 2)
        workers = _workers(server)
        assert server.process is not None
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(30) == 0
        for worker in workers:
            assert not worker.is_running() or worker.status() == psutil.STATUS_ZOMBIE


def test_a_taken_port_is_a_one_line_error(database_url: str, tmp_path: Path) -> None:
    port = free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen(1)
        result = run_tessera(
            ["serve", "--port", str(port), "--workers", "2"], _env(database_url, tmp_path)
        )
    assert result.returncode == 1
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith(f"tessera: cannot listen on 127.0.0.1:{port}")


def test_sigterm_stops_the_embedded_postgres_of_a_single_process(tmp_path: Path) -> None:
    """uvicorn re-raises SIGTERM after its shutdown; the embedded server must still stop."""
    env = tessera_env(
        TESSERA_DATA_DIR=str(tmp_path),
        TESSERA_SECRET_KEY="serve-test-secret",
        TESSERA_LOG_LEVEL="warning",
    )
    with TesseraServer(env) as server:
        pid_file = tmp_path / "postgres" / "postmaster.pid"
        postmaster = psutil.Process(int(pid_file.read_text().split()[0]))
        assert postmaster.is_running()
        assert server.process is not None
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(60) == 0
    postmaster.wait(30)
    assert not pid_file.exists()


def test_several_workers_without_a_secret_key_is_a_one_line_error(
    database_url: str, tmp_path: Path
) -> None:
    env = _env(database_url, tmp_path)
    del env["TESSERA_SECRET_KEY"]
    result = run_tessera(["serve", "--port", str(free_port()), "--workers", "2"], env)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "tessera: config: secret_key: required to serve with 2 workers (set "
        "TESSERA_SECRET_KEY or secret_key in tessera.toml, the same on every machine)"
    )
    assert not (tmp_path / "secret_key").exists()  # refused before generating one


def test_several_workers_from_the_config_file_need_a_secret_key_too(
    database_url: str, tmp_path: Path
) -> None:
    env = _env(database_url, tmp_path)
    del env["TESSERA_SECRET_KEY"]
    config = tmp_path / "tessera.toml"
    config.write_text("workers = 3\n")
    result = run_tessera(["serve", "--port", str(free_port()), "--config", str(config)], env)
    assert result.returncode == 2
    assert "secret_key: required to serve with 3 workers" in result.stderr
