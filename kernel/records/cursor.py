"""Opaque, signed keyset cursors.

A cursor carries the sort keys and the values of the last row of a page. It is signed with
the deployment's secret (HMAC-SHA256), so a forged or truncated cursor is refused with a
400 instead of reaching SQL, and it is bound to its collection and sort so it cannot be
replayed against another.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import orjson

from kernel.errors import BadRequest

_SIGNATURE_BYTES = 16


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class CursorCodec:
    def __init__(self, secret: bytes) -> None:
        key = hashlib.sha256(b"tessera-cursor:" + secret).digest()
        self._mac = hmac.new(key, digestmod=hashlib.sha256)  # keyed once, copied per use

    def _sign(self, payload: bytes) -> bytes:
        mac = self._mac.copy()
        mac.update(payload)
        return mac.digest()[:_SIGNATURE_BYTES]

    def encode(self, scope: str, values: list[Any]) -> str:
        """A cursor for ``values`` (JSON-able after orjson) within ``scope``."""
        payload = orjson.dumps([scope, values])
        return f"{_b64(payload)}.{_b64(self._sign(payload))}"

    def decode(self, scope: str, cursor: str) -> list[Any]:
        """The values of a cursor made for ``scope``; 400 for anything else."""
        body, _, signature = cursor.partition(".")
        try:
            payload = _unb64(body)
            valid = hmac.compare_digest(_unb64(signature), self._sign(payload))
        except (ValueError, TypeError):
            valid = False
        if not valid:
            raise BadRequest("cursor is not valid", code="invalid_cursor", field="cursor")
        cursor_scope, values = orjson.loads(payload)
        if cursor_scope != scope or not isinstance(values, list):
            raise BadRequest(
                "cursor belongs to a different collection or sort order",
                code="invalid_cursor",
                field="cursor",
            )
        return values
