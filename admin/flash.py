"""One-shot messages ("Project created") carried across a redirect in a signed cookie."""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from typing import Literal

import orjson
from starlette.requests import Request
from starlette.responses import Response

from admin import cookies

Kind = Literal["success", "error", "info"]
MAX_MESSAGE = 600


@dataclass(frozen=True, slots=True)
class Flash:
    kind: Kind
    message: str


def _sign(key: bytes, payload: bytes) -> str:
    return hmac.new(key, payload, hashlib.sha256).hexdigest()


def encode(key: bytes, flashes: list[Flash]) -> str:
    payload = orjson.dumps([[f.kind, f.message[:MAX_MESSAGE]] for f in flashes])
    body = base64.urlsafe_b64encode(payload).decode().rstrip("=")
    return f"{body}.{_sign(key, payload)}"


def decode(key: bytes, value: str | None) -> list[Flash]:
    """The messages in a cookie value; nothing when it is absent, malformed or forged."""
    if not value or "." not in value:
        return []
    body, signature = value.rsplit(".", 1)
    try:
        payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except ValueError:
        return []
    if not hmac.compare_digest(_sign(key, payload), signature):
        return []
    try:
        return [Flash(kind, str(message)) for kind, message in orjson.loads(payload)]
    except (orjson.JSONDecodeError, TypeError, ValueError):
        return []


def put(response: Response, request: Request, key: bytes, flashes: list[Flash]) -> None:
    """Attach ``flashes`` to a (redirect) response; the next page shows them once."""
    if flashes:
        cookies.set_cookie(response, request, cookies.FLASH, encode(key, flashes))


def take(request: Request, key: bytes) -> list[Flash]:
    """The messages waiting for this request (the page clears the cookie)."""
    return decode(key, request.cookies.get(cookies.FLASH))
