"""API keys: generated once, stored as SHA-256 hashes, resolved from an in-process cache.

A key is ``tsk_<random>``; only its hash and a short prefix (for people to recognise it)
are stored. Keys carry 256 bits of randomness, so a fast hash is the right choice (a slow
KDF protects low-entropy passwords, not random keys). Resolution is cached for
``ttl`` seconds, for at most :data:`MAX_CACHED_KEYS` keys (least recently used dropped
first); revoking a key evicts it in every process through the bus at once.

The cache is keyed by the key text itself, as the token cache is by the token: a request
with a cached key costs a dictionary lookup, no hash. Only keys that resolved are cached
(an unknown key is not kept), and what a cached key gives is its principal, which the
cache holds anyway; the text lives in this process's memory no longer than its entry.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import time
from datetime import UTC, datetime

import sqlalchemy as sa

from kernel.db.engine import Database
from kernel.db.schema import api_keys
from kernel.errors import Unauthorized
from kernel.events.bus import RESYNC
from kernel.lru import LruCache
from kernel.security.principal import Principal

log = logging.getLogger(__name__)

CHANNEL = "keys"
KEY_PREFIX = "tsk_"
SHOWN_PREFIX_LENGTH = 12
#: Resolved keys kept per process.
MAX_CACHED_KEYS = 10_000


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ApiKeyResolver:
    """Key text → :class:`Principal`, without a query per request."""

    def __init__(self, db: Database, ttl: float = 60.0) -> None:
        self.db = db
        self.ttl = ttl
        #: key text → (principal, when the entry expires (``time.monotonic``), key hash).
        self._cache: LruCache[str, tuple[Principal, float, str]] = LruCache(MAX_CACHED_KEYS)
        self._used: set[int] = set()
        #: Counts evictions, so a load that raced a revocation does not cache what it read.
        self._evictions = 0

    def cached(self, key: str) -> Principal | None:
        """The key's principal when resolved less than ``ttl`` ago (no I/O), else None."""
        entry = self._cache.get(key)
        if entry is None or entry[1] <= time.monotonic():
            return None
        principal = entry[0]
        self._used.add(principal.id)
        return principal

    async def resolve(self, key: str) -> Principal:
        """The key's principal; 401 ``invalid_api_key`` for an unknown or revoked key."""
        principal = self.cached(key)
        if principal is None:
            digest = hash_key(key)
            evictions = self._evictions
            principal = await self._load(digest)
            if evictions == self._evictions:
                self._cache.put(key, (principal, time.monotonic() + self.ttl, digest))
            self._used.add(principal.id)
        return principal

    async def _load(self, digest: str) -> Principal:
        async with self.db.engine.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(api_keys).where(
                        api_keys.c.key_hash == digest, api_keys.c.revoked_at.is_(None)
                    )
                )
            ).one_or_none()
        if row is None:
            raise Unauthorized("invalid or revoked API key", code="invalid_api_key")
        return Principal(
            kind="key",
            id=row.id,
            project_id=row.project_id,
            role=row.role,
            name=row.name,
            scopes=frozenset(row.scopes),
            collections=frozenset(row.collections) if row.collections is not None else None,
        )

    def evict(self, key_hash: str) -> None:
        """Forget a key (called on revocation, in every process through the bus); a bus
        resync forgets them all. A load in flight meanwhile is served but not kept. Walks the
        cache (the entries are keyed by key text): revocations are rare, requests are not."""
        self._evictions += 1
        if key_hash == RESYNC:
            self._cache.clear()
            return
        for key, (_, _, digest) in self._cache.items():
            if digest == key_hash:
                self._cache.pop(key)

    async def flush_last_used(self) -> None:
        """Record ``last_used_at`` for keys used since the last flush (one UPDATE)."""
        if not self._used:
            return
        used, self._used = self._used, set()
        async with self.db.engine.begin() as conn:
            await conn.execute(
                api_keys.update()
                .where(api_keys.c.id.in_(sorted(used)))
                .values(last_used_at=datetime.now(UTC))
            )

    async def run_flusher(self, every: float = 30.0) -> None:
        """Flush ``last_used_at`` periodically until cancelled."""
        while True:
            await asyncio.sleep(every)
            try:
                await self.flush_last_used()
            except Exception:
                log.exception("could not record API key usage")
