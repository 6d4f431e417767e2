"""Bearer tokens verified once per process, then served from a bounded cache.

Verifying a token (base64, JSON, HMAC-SHA256 through PyJWT) costs about 35 µs, more than
the rest of a cached API key's authentication; frontends send the same user token on every
request. So a token is verified on its first use in a process, its subject is checked (the
project user still exists in its project; the admin still exists and the token's credential
stamp matches the admin's current password, see :mod:`kernel.security.tokens`), and the
principal is kept:

- until the token's ``exp``: an expired token is refused even while cached;
- until revoked: deleting a project forgets its users' tokens in every process through the
  bus (:data:`CHANNEL`, the project id as payload); deleting an admin or changing an
  admin's password forgets that admin's tokens the same way (:data:`ADMINS_CHANNEL`, the
  admin's id as payload), and the token is then refused when checked again; a bus resync
  forgets every token;
- within ``size`` tokens, the least recently used forgotten first.

Only tokens that verified and whose subject checks out are kept: a tampered, expired or
orphaned token is checked again (and refused) on every request.
"""

from __future__ import annotations

import hmac
import time
from collections import OrderedDict
from collections.abc import Callable

import sqlalchemy as sa

from kernel.db.engine import Database
from kernel.db.schema import admins, project_users
from kernel.errors import Unauthorized
from kernel.events.bus import RESYNC
from kernel.security.principal import Principal
from kernel.security.tokens import TokenService, VerifiedToken

CHANNEL = "tokens"
#: Bus channel on which an admin's tokens are revoked; the payload is the admin's id.
ADMINS_CHANNEL = "admin-tokens"


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
        verified = self.tokens.verify_with_expiry(token)
        principal = verified.principal
        if not await self._subject_current(verified):
            raise Unauthorized(
                "this token's account no longer exists or its password changed; sign in again",
                code="token_revoked",
            )
        if evictions == self._evictions:
            self._cache[token] = (principal, verified.expires)
            if len(self._cache) > self.size:
                self._cache.popitem(last=False)
        return principal

    async def _subject_current(self, verified: VerifiedToken) -> bool:
        """Whether the token's project user still exists, or its admin still exists with
        the credential the token was issued against (a token without a stamp is refused)."""
        principal = verified.principal
        if principal.is_admin:
            statement = sa.select(admins.c.password_hash).where(admins.c.id == principal.id)
        else:
            statement = sa.select(project_users.c.id).where(
                project_users.c.id == principal.id,
                project_users.c.project_id == principal.project_id,
            )
        async with self.db.engine.connect() as conn:
            found = (await conn.execute(statement)).scalar_one_or_none()
        if found is None or not principal.is_admin:
            return found is not None
        return verified.credential_stamp is not None and hmac.compare_digest(
            verified.credential_stamp, self.tokens.stamp(found)
        )

    def evict(self, project_id: str) -> None:
        """Forget the tokens of ``project_id``'s users (called when the project is deleted,
        in every process through the bus); a bus resync forgets every token."""
        self._forget(project_id, lambda principal: principal.project_id == project_id)

    def evict_admin(self, admin_id: str) -> None:
        """Forget the tokens of the admin whose id is ``admin_id`` (called when that admin
        is deleted or their password changes, in every process through the bus); a bus
        resync forgets every token."""
        self._forget(
            admin_id, lambda principal: principal.is_admin and str(principal.id) == admin_id
        )

    def _forget(self, payload: str, revoked: Callable[[Principal], bool]) -> None:
        """Forget every token on a bus resync ``payload``, else those whose principal is
        ``revoked``; either way a lookup in flight will not cache what it found."""
        self._evictions += 1
        if payload == RESYNC:
            self._cache.clear()
            return
        for token in [token for token, (principal, _) in self._cache.items() if revoked(principal)]:
            del self._cache[token]
