"""uvicorn's httptools protocol, with less work per response on a keep-alive connection.

- **A response head leaves with its first body part.** uvicorn writes a response's status
  line and headers as soon as the app sends ``http.response.start``, and the body when it
  sends ``http.response.body``: two socket writes and two TCP segments for every response,
  and a client that wakes twice. Here the head waits for the response's first body write
  and both leave in one ``writelines`` call. A streamed response (server-sent events) goes
  out as promptly as before: its head leaves with its first chunk. A ``100 Continue``
  interim response is never held.
- **One keep-alive timer per idle stretch, not per response.** uvicorn arms a timer after
  every response and cancels it when the next request arrives (a timer handle made and
  dropped per request). Here a response only notes when the connection went idle; one
  timer checks, when it fires, whether the connection has been idle for the whole
  ``timeout_keep_alive`` (then it closes it, as uvicorn does) or re-arms for the rest.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

#: How every response head uvicorn writes starts, and the one head that must not wait.
_HEAD = b"HTTP/1.1 "
_INTERIM = b"HTTP/1.1 100 "


class HeadWithBody:
    """The transport as one request/response cycle sees it: a response head is held until
    the next write and sent with it. Everything else goes straight through."""

    __slots__ = ("_head", "_on_response", "transport")

    def __init__(self, transport: asyncio.Transport, on_response: Callable[[], None]) -> None:
        self.transport = transport
        self._head: bytes | None = None
        self._on_response = on_response

    def write(self, data: bytes) -> None:
        head = self._head
        if head is not None:
            self._head = None
            self.transport.writelines((head, data))
        elif data.startswith(_HEAD) and not data.startswith(_INTERIM):
            self._head = data
        else:
            self.transport.write(data)

    def writelines(self, chunks: Iterable[bytes]) -> None:
        self.write(b"".join(chunks))

    def flush(self) -> None:
        """Send a head still held."""
        head = self._head
        if head is not None:
            self._head = None
            self.transport.write(head)

    def response_complete(self) -> None:
        """The cycle's ``on_response``: a response may end without a body write (HEAD)."""
        self.flush()
        self._on_response()

    def close(self) -> None:
        self.flush()
        self.transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


class HttpProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` whose request/response cycles write through
    :class:`HeadWithBody`, with a lazy keep-alive timer."""

    #: Event-loop time the connection went idle (its last response completed); None while
    #: a request is in flight.
    _idle_since: float | None = None
    _keep_alive_timer: asyncio.TimerHandle | None = None

    def _unset_keepalive_if_required(self) -> None:
        # Called by uvicorn when data arrives (and as a response completes): busy again.
        self._idle_since = None

    def on_response_complete(self) -> None:
        """uvicorn's own (0.55), but arming the keep-alive check only when none is armed."""
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self.flow.resume_reading()
        if self.pipeline:
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
            return
        self._idle_since = self.loop.time()
        if self._keep_alive_timer is None:
            self._keep_alive_timer = self.loop.call_later(
                self.timeout_keep_alive, self._check_keep_alive
            )

    def _check_keep_alive(self) -> None:
        self._keep_alive_timer = None
        idle_since = self._idle_since
        if idle_since is None or self.transport.is_closing():
            return  # a request is in flight (its response re-arms), or the end is near
        remaining = idle_since + self.timeout_keep_alive - self.loop.time()
        if remaining <= 0:
            self.timeout_keep_alive_handler()
        else:
            self._keep_alive_timer = self.loop.call_later(remaining, self._check_keep_alive)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._keep_alive_timer is not None:
            self._keep_alive_timer.cancel()
            self._keep_alive_timer = None
        super().connection_lost(exc)

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        holder = HeadWithBody(cycle.transport, cycle.on_response)
        cycle.transport = holder  # type: ignore[assignment]
        cycle.on_response = holder.response_complete
        super()._start_asgi_task(cycle, app)
