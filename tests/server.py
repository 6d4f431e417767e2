"""Run ``tessera`` as a real subprocess: the CLI exactly as a person runs it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import httpx

from tests.services import free_port

REPO = Path(__file__).resolve().parent.parent


def tessera_env(**extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("TESSERA_")}
    env.update(extra)
    return env


def run_tessera(
    args: list[str], env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kernel.cli", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class TesseraServer:
    """``tessera serve`` on a free port; stopped (by its PID) when the block ends.

    Its output is piped (read once it has exited), or written to ``output``: give a file
    to a server that may log much, since a full pipe nobody reads blocks it."""

    def __init__(self, env: dict[str, str], *args: str, output: IO[str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = env
        self.args = args
        self.output = output
        self.process: subprocess.Popen[str] | None = None

    def __enter__(self) -> TesseraServer:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "kernel.cli", "serve", "--port", str(self.port), *self.args],
            env=self.env,
            cwd=REPO,
            stdout=self.output or subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                output = self.process.stdout.read() if self.process.stdout else ""
                raise RuntimeError(f"tessera serve exited early:\n{output}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.__exit__(None, None, None)
        raise RuntimeError("tessera serve did not answer /healthz within 60 s")

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
