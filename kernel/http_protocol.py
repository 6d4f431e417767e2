"""uvicorn's httptools protocol, with each response's head and first body part sent together.

uvicorn writes a response's status line and headers as soon as the app sends
``http.response.start``, and the body when it sends ``http.response.body``: two socket
writes and two TCP segments for every response, and a client that wakes twice. Here the
head waits for the response's first body write and both leave in one ``writelines`` call.
A streamed response (server-sent events) goes out as promptly as before: its head leaves
with its first chunk. A ``100 Continue`` interim response is never held.
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
    :class:`HeadWithBody`."""

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        holder = HeadWithBody(cycle.transport, cycle.on_response)
        cycle.transport = holder  # type: ignore[assignment]
        cycle.on_response = holder.response_complete
        super()._start_asgi_task(cycle, app)
