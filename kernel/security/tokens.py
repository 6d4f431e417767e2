"""JSON Web Tokens (HS256) for admins and project users.

An admin's token also carries a stamp of the admin's password hash (claim ``cred``, a keyed
digest that reveals nothing about the hash): changing the password changes the stamp, so
every token issued before the change is refused once it is verified again.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any, NamedTuple

import jwt

from kernel.errors import Unauthorized
from kernel.security.principal import END_USER_SCOPES, Principal

ALGORITHM = "HS256"


class VerifiedToken(NamedTuple):
    """What a valid token says: its principal, its ``exp`` (Unix seconds), and the stamp of
    the credential it was issued against (``None`` when it carries none)."""

    principal: Principal
    expires: int
    credential_stamp: str | None


class TokenService:
    """Issues and verifies tokens signed with the deployment's secret key."""

    def __init__(self, secret: bytes, ttl_seconds: int) -> None:
        self._secret = secret
        self.ttl_seconds = ttl_seconds

    def issue(self, principal: Principal, credential: str | None = None) -> str:
        """A token for ``principal``; with ``credential`` (the account's password hash) it
        carries :meth:`stamp` of it, and is valid only while that credential is."""
        now = int(time.time())
        claims = {
            "sub": str(principal.id),
            "kind": principal.kind,
            "role": principal.role,
            "email": principal.email,
            "iat": now,
            "exp": now + self.ttl_seconds,
        }
        if principal.project_id is not None:
            claims["project"] = principal.project_id
        if credential is not None:
            claims["cred"] = self.stamp(credential)
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def stamp(self, credential: str) -> str:
        """A digest of ``credential`` keyed with the secret: equal for equal credentials,
        useless for guessing the credential from a token."""
        digest = hmac.new(self._secret, b"token-credential:" + credential.encode(), hashlib.sha256)
        return digest.hexdigest()[:32]

    def verify(self, token: str) -> Principal:
        """The principal a valid token carries; :class:`Unauthorized` otherwise."""
        return self.verify_with_expiry(token)[0]

    def verify_with_expiry(self, token: str) -> VerifiedToken:
        """The principal a valid token carries, its ``exp`` (Unix seconds), after which the
        token is refused, and its credential stamp; :class:`Unauthorized` for an expired or
        invalid token."""
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                options={"require": ["sub", "kind", "exp"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("token expired; sign in again", code="token_expired") from None
        except jwt.PyJWTError:
            raise Unauthorized("invalid token", code="invalid_token") from None
        stamp = claims.get("cred")
        # PyJWT accepted ``exp`` as anything int() takes.
        return VerifiedToken(
            _principal(claims), int(claims["exp"]), stamp if isinstance(stamp, str) else None
        )


def _principal(claims: dict[str, Any]) -> Principal:
    kind = claims.get("kind")
    try:
        subject = int(claims["sub"])
    except (TypeError, ValueError):
        raise Unauthorized("invalid token", code="invalid_token") from None
    if kind == "admin":
        return Principal(kind="admin", id=subject, role="admin", email=claims.get("email"))
    if kind == "user" and isinstance(claims.get("project"), str):
        return Principal(
            kind="user",
            id=subject,
            project_id=claims["project"],
            role=claims.get("role") or "user",
            email=claims.get("email"),
            scopes=END_USER_SCOPES,
        )
    raise Unauthorized("invalid token", code="invalid_token")
