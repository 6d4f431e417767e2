"""Request ids: one per request, echoed as ``X-Request-Id`` and put on its log records."""

from __future__ import annotations

import itertools
import logging
import os
import re
from contextvars import ContextVar
from typing import Any

from starlette.responses import Response

from kernel.api.exchange import Exchange, RequestStep

#: The id of the request being served; None outside a request.
REQUEST_ID: ContextVar[str | None] = ContextVar("tessera_request_id", default=None)

HEADER = b"x-request-id"
#: An incoming id is kept when it is this sane (what proxies and clients send: UUIDs,
#: hex, ``<service>-<n>``); anything else is replaced, so logs never carry a client's junk.
_SANE = re.compile(rb"[A-Za-z0-9._:-]{1,128}")


class RequestId(RequestStep):
    """Takes a sane incoming ``X-Request-Id`` or makes one, answers with it, and sets
    :data:`REQUEST_ID` for the request. Made ids are ``<process prefix>-<counter>`` in hex:
    unique across processes (the prefix is random per app) and cheaper than random bytes
    per request."""

    def __init__(self) -> None:
        # Formatted in C, one ``next`` per id: no format-spec parsing per request.
        self._made = map(f"{os.urandom(4).hex()}-%x".__mod__, itertools.count(1))

    def enter(self, exchange: Exchange) -> Response | None:
        incoming = exchange.headers.get(HEADER)
        if incoming is not None and _SANE.fullmatch(incoming):
            request_id = incoming.decode("ascii")
            raw = incoming
        else:
            request_id = next(self._made)
            raw = request_id.encode("ascii")
        exchange.response_headers.append((HEADER, raw))
        exchange.request_id_token = REQUEST_ID.set(request_id)
        return None

    def finish(self, exchange: Exchange) -> None:
        if exchange.request_id_token is not None:
            REQUEST_ID.reset(exchange.request_id_token)


def install_log_record_factory() -> None:
    """Give every log record a ``request_id`` attribute (the current request's, or None),
    so a log format can show ``%(request_id)s``. Idempotent: installs itself once per
    process, over whatever factory was there."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "adds_request_id", False):
        return

    def record_with_request_id(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        record.request_id = REQUEST_ID.get()
        return record

    record_with_request_id.adds_request_id = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(record_with_request_id)
