"""Bearer tokens verified once per process, then served from a bounded cache.

Verifying a token (base64, JSON, HMAC-SHA256 through PyJWT) costs about 35 µs, more than
the rest of a cached API key's authentication; frontends send the same user token on every
request. So a token is verified on its first use in a process, its subject (the admin, or
the project user in its project) is checked to still exist, and the principal is kept:

- until the token's ``exp``: an expired token is refused even while cached;
- until revoked: deleting a project forgets its users' tokens in every process through the
  bus (:data:`CHANNEL`, the project id as payload), and a bus resync forgets them all;
- within ``size`` tokens, the least recently used forgotten first.

Only tokens that verified and whose subject exists are kept: a tampered, expired or
orphaned token is checked again (and refused) on every request.
"""

from __future__ import annotations

import time
from collections import OrderedDict

import sqlalchemy as sa

from kernel.db.engine import Database
from kernel.db.schema import admins, project_users
from kernel.errors import Unauthorized
from kernel.events.bus import RESYNC
from kernel.security.principal import Principal
from kernel.security.tokens import TokenService

CHANNEL = "tokens"


class TokenResolver:
    """Token text → :class:`Principal`, verified and looked up once per process."""

    def __init__(self, tokens: TokenService, db: Database, size: int) -> None:
        self.tokens = tokens
        self.db = db
        self.size = size
        #: token → (principal, the token's exp in Unix seconds), least recently used first.
        self._cache: OrderedDict[str, tuple[Principal, float]] = OrderedDict()
        #: Counts evictions, so a lookup that raced one does not cache what it found.
        self._evictions = 0

    def __len__(self) -> int:
        """How many tokens are cached."""
        return len(self._cache)

    def cached(self, token: str) -> Principal | None:
        """The token's principal when it is cached and unexpired (no I/O), else None."""
        entry = self._cache.get(token)
        if entry is None:
            return None
        if entry[1] <= time.time():
            del self._cache[token]
            return None
        self._cache.move_to_end(token)
        return entry[0]

    async def resolve(self, token: str) -> Principal:
        """The token's principal; 401 ``token_expired`` or ``invalid_token`` for a bad token,
        ``token_revoked`` when its admin or project user no longer exists."""
        principal = self.cached(token)
        if principal is not None:
            return principal
        evictions = self._evictions
        principal, expires = self.tokens.verify_with_expiry(token)
        if not await self._subject_exists(principal):
            raise Unauthorized(
                "this token's account no longer exists; sign in again", code="token_revoked"
            )
        if evictions == self._evictions:
            self._cache[token] = (principal, expires)
            if len(self._cache) > self.size:
                self._cache.popitem(last=False)
        return principal

    async def _subject_exists(self, principal: Principal) -> bool:
        if principal.is_admin:
            statement = sa.select(admins.c.id).where(admins.c.id == principal.id)
        else:
            statement = sa.select(project_users.c.id).where(
                project_users.c.id == principal.id,
                project_users.c.project_id == principal.project_id,
            )
        async with self.db.engine.connect() as conn:
            return (await conn.execute(statement)).first() is not None

    def evict(self, project_id: str) -> None:
        """Forget the tokens of ``project_id``'s users (called when the project is deleted,
        in every process through the bus); a bus resync forgets every token."""
        self._evictions += 1
        if project_id == RESYNC:
            self._cache.clear()
            return
        revoked = [
            token
            for token, (principal, _) in self._cache.items()
            if principal.project_id == project_id
        ]
        for token in revoked:
            del self._cache[token]
