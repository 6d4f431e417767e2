"""One HTTP request on its way through the request pipeline, and the base class of its steps.

A :class:`RequestStep` sees the request as an :class:`Exchange`: the ASGI scope, the request
headers as a dict, the ``receive`` the route will read its body from, and the headers every
response gets. :mod:`kernel.api.pipeline` runs the steps in their one order around the
route, whichever serves it (the records fast path or FastAPI).
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING

from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from kernel.errors import TesseraError
from kernel.security.principal import Principal

#: Where the authentication step leaves the principal (or the credentials' error) in the scope.
PRINCIPAL_KEY = "tessera.principal"

if TYPE_CHECKING:
    from contextvars import Token


class Exchange:
    """The pipeline's per-request state.

    ``headers`` maps lower-case header names to values (bytes, as ASGI gives them; the first
    of repeated headers wins); ``receive`` is what the route reads the body through (a step
    may wrap it); ``response_headers`` are added to whatever response the request gets,
    error responses included; ``status`` is the response's status once it has started
    (500 until then).
    """

    __slots__ = (
        "_send",
        "headers",
        "receive",
        "request_id_token",
        "response_headers",
        "scope",
        "started",
        "status",
    )

    def __init__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scope = scope
        self.headers: dict[bytes, bytes] = dict(reversed(scope["headers"]))
        self.receive = receive
        self._send = send
        self.response_headers: list[tuple[bytes, bytes]] = []
        self.status = 500
        self.started = 0.0
        self.request_id_token: Token[str | None] | None = None

    def send(self, message: Message) -> Awaitable[None]:
        """The ``send`` the route answers through: adds ``response_headers`` to the start.

        A plain method returning the server's own awaitable: no coroutine of its own per
        message on the hot path."""
        if message["type"] == "http.response.start":
            self.status = message["status"]
            extra = self.response_headers
            if extra:
                message["headers"] = [*message.get("headers", ()), *extra]
        return self._send(message)

    def add_headers(self, headers: dict[str, str]) -> None:
        """Add ``headers`` (names in any case) to the response."""
        for name, value in headers.items():
            self.response_headers.append((name.lower().encode("latin-1"), value.encode("latin-1")))


class RequestStep:
    """One cross-cutting step of every HTTP request (body limit, auth, quota, CORS...).

    The pipeline calls :meth:`enter` of each step in order before the route, and
    :meth:`finish` of each in reverse order once the request is over, whatever happened.
    A step overrides either or both; a step that overrides neither is not called.
    """

    def enter(self, exchange: Exchange) -> Response | Awaitable[Response | None] | None:
        """Before the route. Return None to go on, or a response to answer the request
        without the route (the later steps are skipped; ``finish`` still runs), or raise a
        :class:`~kernel.errors.TesseraError` to answer with its error body. When the step
        needs I/O for this request, return an awaitable of the same (a coroutine): the
        pipeline awaits it. ``enter`` stays a plain method so that a request needing no I/O
        costs no coroutine; ``async def enter`` works too."""
        return None

    def finish(self, exchange: Exchange) -> None:
        """After the response was sent, or the request failed; must not raise."""


def principal_of(scope: Scope) -> Principal:
    """The caller the authentication step found; raises its error for bad credentials."""
    principal: Principal | TesseraError = scope[PRINCIPAL_KEY]
    if isinstance(principal, TesseraError):
        raise principal
    return principal
