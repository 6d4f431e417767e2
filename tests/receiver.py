"""A real HTTP server on 127.0.0.1 that receives webhooks, and can be told to misbehave."""

from __future__ import annotations

import http.server
import threading
import time
from dataclasses import dataclass, field

from tests.services import free_port


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class Receiver:
    """Answers 200, except: the first ``fail_times`` requests get 500; requests while
    ``hold`` is set wait up to ``hold_seconds`` before answering."""

    fail_times: int = 0
    hold_seconds: float = 0.0
    requests: list[Received] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                receiver.requests.append(Received(dict(self.headers), body, time.time()))
                receiver.arrived.set()
                if receiver.hold_seconds:
                    hold, receiver.hold_seconds = receiver.hold_seconds, 0.0
                    time.sleep(hold)
                if receiver.fail_times > 0:
                    receiver.fail_times -= 1
                    self.send_response(500)
                    self.end_headers()
                    self.wfile.write(b"try again")
                    return
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
