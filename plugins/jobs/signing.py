"""Webhook secrets and signatures.

A webhook's secret is derived from the deployment's secret key and a random salt stored
with the webhook: it is shown once at creation and never stored, yet every process can
sign with it. Deliveries carry ``X-Tessera-Signature: sha256=<HMAC-SHA256 of the raw body>``;
the body includes the delivery id and the time it was sent, so a receiver that checks the
signature and rejects old or repeated ids is safe from replays.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets


def new_salt() -> str:
    return secrets.token_urlsafe(24)


def webhook_secret(server_secret: bytes, salt: str) -> str:
    digest = hmac.new(server_secret, b"webhook-secret:" + salt.encode(), hashlib.sha256).digest()
    return "whsec_" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def signature(secret: str, body: bytes) -> str:
    """The ``X-Tessera-Signature`` header value for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str) -> bool:
    """What a receiver does: recompute and compare in constant time."""
    return hmac.compare_digest(signature(secret, body), header)
