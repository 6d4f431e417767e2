"""Signed, expiring tokens for the URLs a storage backend serves itself.

A token is ``<payload>.<signature>``: the claims as JSON and an HMAC-SHA256 over them with
a key derived from the deployment's secret, both base64url. Whoever holds a token may do
exactly what its claims say until ``exp``; nothing else.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any

import orjson

from kernel import Forbidden


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class UrlSigner:
    """Signs and verifies claims for one ``purpose`` (a token of another purpose fails)."""

    def __init__(self, secret: bytes, purpose: str) -> None:
        self._key = hmac.new(secret, f"tessera-url:{purpose}".encode(), hashlib.sha256).digest()

    def _signature(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()

    def sign(self, claims: dict[str, Any], expires_at: float) -> str:
        """A token carrying ``claims`` that is valid until ``expires_at`` (Unix time)."""
        payload = orjson.dumps({**claims, "exp": int(expires_at)})
        return f"{_b64(payload)}.{_b64(self._signature(payload))}"

    def verify(self, token: str, action: str) -> dict[str, Any]:
        """The claims of a valid, unexpired token whose ``act`` is ``action``.

        Raises :class:`Forbidden` (``invalid_signature`` or ``url_expired``) otherwise.
        """
        body, _, signature = token.partition(".")
        try:
            payload = _unb64(body)
            valid = hmac.compare_digest(_unb64(signature), self._signature(payload))
            claims = orjson.loads(payload) if valid else None
        except (ValueError, TypeError):
            claims = None
        if not isinstance(claims, dict) or claims.get("act") != action:
            raise Forbidden("the signed URL is not valid", code="invalid_signature")
        if claims["exp"] < time.time():
            raise Forbidden("the signed URL has expired", code="url_expired")
        return claims
