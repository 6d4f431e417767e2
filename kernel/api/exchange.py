"""One HTTP request on its way through the request pipeline, and the base class of its steps.

A :class:`RequestStep` sees the request as an :class:`Exchange`: the ASGI scope, the request
headers as a dict, the ``receive`` the route will read its body from, and the headers every
response gets. :mod:`kernel.api.pipeline` runs the steps in their one order around the
route, whichever serves it (the records fast path or FastAPI).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Iterable
from typing import TYPE_CHECKING, Any

from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from kernel.errors import PayloadTooLarge, TesseraError, Unauthorized
from kernel.security.principal import Principal

#: A header as ASGI carries it: lower-case name and value, as bytes.
RawHeader = tuple[bytes, bytes]

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
    (500 until then); ``started`` is when the pipeline took the request
    (``time.perf_counter``); ``fast_route`` is the fast path's match for the request
    (route and path parameters), None when FastAPI serves it.

    Made once per request, so it sets only what every request needs.
    """

    __slots__ = (
        "fast_route",
        "headers",
        "raw_send",
        "receive",
        "request_id_token",
        "response_headers",
        "scope",
        "started",
        "status",
    )

    def __init__(self, scope: Scope, receive: Receive, send: Send, fast_route: Any) -> None:
        self.started = time.perf_counter()
        self.scope = scope
        self.headers: dict[bytes, bytes] = dict(reversed(scope["headers"]))
        self.receive = receive
        self.raw_send = send
        self.fast_route = fast_route
        self.response_headers: list[RawHeader] = []
        self.status = 500
        self.request_id_token: Token[str | None] | None = None

    def send(self, message: Message) -> Awaitable[None]:
        """The ``send`` a route answers through: adds ``response_headers`` to the start.

        A plain method returning the server's own awaitable: no coroutine of its own per
        message. (The records fast path sends through ``raw_send`` and does the same itself:
        :meth:`start_headers`.)"""
        if message["type"] == "http.response.start":
            self.status = message["status"]
            if self.response_headers:
                message["headers"] = self.start_headers(message.get("headers", ()))
        return self.raw_send(message)

    def start_headers(self, headers: Iterable[RawHeader]) -> Iterable[RawHeader]:
        """A response's own ``headers`` followed by ``response_headers``."""
        extra = self.response_headers
        return [*headers, *extra] if extra else headers

    async def read_body(self, limit: int | None = None) -> bytes | None:
        """The whole request body, read ahead of the route; ``receive`` then gives it to the
        route in one message, as if it came so. None when the client went away first (the
        route hears that instead). :func:`body_too_large` as soon as more than ``limit``
        bytes have arrived."""
        receive = self.receive
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                self.receive = Replay(message, receive)
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if limit is not None and size > limit:
                raise body_too_large(limit)
            chunks.append(chunk)
            if not message.get("more_body", False):
                body = b"".join(chunks)
                whole = {"type": "http.request", "body": body, "more_body": False}
                self.receive = Replay(whole, receive)
                return body

    def add_headers(self, headers: dict[str, str]) -> None:
        """Add ``headers`` (names in any case) to the response."""
        for name, value in headers.items():
            self.response_headers.append((name.lower().encode("latin-1"), value.encode("latin-1")))


def body_too_large(limit: int) -> PayloadTooLarge:
    """The 413 for a body over ``limit`` bytes."""
    return PayloadTooLarge(f"request body is larger than {limit} bytes")


class Replay:
    """A ``receive`` that first gives ``message`` (the body read ahead), then defers."""

    __slots__ = ("message", "receive")

    def __init__(self, message: Message, receive: Receive) -> None:
        self.message: Message | None = message
        self.receive = receive

    async def __call__(self) -> Message:
        message = self.message
        if message is None:
            return await self.receive()
        self.message = None
        return message


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


def signed_in_principal(scope: Scope) -> Principal:
    """The caller, who must have signed in or sent an API key: 401 for the anonymous
    caller, and for bad credentials as :func:`principal_of`."""
    principal = principal_of(scope)
    if principal.kind == "anonymous":
        raise Unauthorized("sign in or send an API key", code="unauthorized")
    return principal
