"""JSON Web Tokens (HS256) for admins and project users."""

from __future__ import annotations

import time
from typing import Any

import jwt

from kernel.errors import Unauthorized
from kernel.security.principal import END_USER_SCOPES, Principal

ALGORITHM = "HS256"


class TokenService:
    """Issues and verifies tokens signed with the deployment's secret key."""

    def __init__(self, secret: bytes, ttl_seconds: int) -> None:
        self._secret = secret
        self.ttl_seconds = ttl_seconds

    def issue(self, principal: Principal) -> str:
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
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def verify(self, token: str) -> Principal:
        """The principal a valid token carries; :class:`Unauthorized` otherwise."""
        return self.verify_with_expiry(token)[0]

    def verify_with_expiry(self, token: str) -> tuple[Principal, int]:
        """The principal a valid token carries and its ``exp`` (Unix seconds), after which
        the token is refused; :class:`Unauthorized` for an expired or invalid token."""
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
        # PyJWT accepted ``exp`` as anything int() takes.
        return _principal(claims), int(claims["exp"])


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
