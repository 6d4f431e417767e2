"""Who is calling: a bearer token, an API key, or nobody."""

from __future__ import annotations

from collections.abc import Mapping

from kernel.errors import Unauthorized
from kernel.security.api_keys import ApiKeyResolver
from kernel.security.principal import ANONYMOUS, Principal
from kernel.security.token_cache import TokenResolver


class Authenticator:
    """Turns request headers into a :class:`Principal`.

    No credentials give the anonymous principal (policies decide what it may do); bad
    credentials are a 401 even where anonymous access would be allowed, so a client with an
    expired token learns about it instead of silently seeing less.
    """

    def __init__(self, tokens: TokenResolver, keys: ApiKeyResolver) -> None:
        self.tokens = tokens
        self.keys = keys

    async def principal(self, headers: Mapping[str, str]) -> Principal:
        principal = self.known(headers)
        if principal is not None:
            return principal
        token = _bearer(headers)
        if token is not None:
            return await self.tokens.resolve(token)
        return await self.keys.resolve(headers["x-api-key"].strip())

    def known(self, headers: Mapping[str, str]) -> Principal | None:
        """The caller when that takes no I/O (no credentials, a token or a key resolved
        recently); None when a token or key must be checked (:meth:`principal` does).
        Raises :class:`Unauthorized` for a malformed ``Authorization`` header."""
        token = _bearer(headers)
        if token is not None:
            return self.tokens.cached(token)
        key = headers.get("x-api-key")
        if key:
            return self.keys.cached(key.strip())
        return ANONYMOUS


def _bearer(headers: Mapping[str, str]) -> str | None:
    """The bearer token of the ``Authorization`` header; None without that header."""
    authorization = headers.get("authorization")
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("use 'Authorization: Bearer <token>'", code="invalid_token")
    return token.strip()
