"""Managing API keys: create (secret shown once), list, revoke."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, field_validator

from kernel.audit import record_audit
from kernel.catalog.names import check_name
from kernel.db.schema import api_keys
from kernel.errors import Forbidden, NotFound, Unauthorized
from kernel.security.api_keys import CHANNEL, SHOWN_PREFIX_LENGTH, generate_key, hash_key
from kernel.security.principal import SCOPES, Principal

if TYPE_CHECKING:
    from kernel.runtime import Tessera


class KeySpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    scopes: list[str] = Field(min_length=1)
    collections: list[str] | None = None
    role: str = Field(default="service", min_length=1, max_length=100)

    @field_validator("scopes")
    @classmethod
    def _known_scopes(cls, scopes: list[str]) -> list[str]:
        unknown = sorted(set(scopes) - set(SCOPES))
        if unknown:
            raise ValueError(f"unknown scopes {unknown}; known: {', '.join(SCOPES)}")
        return sorted(set(scopes))

    @field_validator("collections")
    @classmethod
    def _collection_names(cls, names: list[str] | None) -> list[str] | None:
        if names is None:
            return None
        return sorted({check_name(name, what="collection", field="collections") for name in names})


def describe(row: Any) -> dict[str, Any]:
    """A key as lists show it: never the secret."""
    return {
        "id": row.id,
        "name": row.name,
        "prefix": row.prefix,
        "scopes": row.scopes,
        "collections": row.collections,
        "role": row.role,
        "created_at": row.created_at,
        "created_by": row.created_by,
        "revoked_at": row.revoked_at,
        "last_used_at": row.last_used_at,
    }


def _require_admin(principal: Principal, project_id: str) -> None:
    if principal.kind == "anonymous":
        raise Unauthorized("sign in as an admin to manage API keys", code="unauthorized")
    if not principal.is_admin:
        raise Forbidden("only admins manage API keys", code="admin_only")


class KeyService:
    def __init__(self, tessera: Tessera) -> None:
        self.tessera = tessera

    async def create(self, project_id: str, spec: KeySpec, principal: Principal) -> dict[str, Any]:
        _require_admin(principal, project_id)
        await self.tessera.catalog.get(project_id)
        key = generate_key()
        async with self.tessera.db.engine.begin() as conn:
            row = (
                await conn.execute(
                    api_keys.insert()
                    .values(
                        project_id=project_id,
                        name=spec.name,
                        prefix=key[:SHOWN_PREFIX_LENGTH],
                        key_hash=hash_key(key),
                        scopes=spec.scopes,
                        collections=spec.collections,
                        role=spec.role,
                        created_by=principal.actor(),
                    )
                    .returning(*api_keys.c)
                )
            ).one()
            described = describe(row)
            await record_audit(
                conn,
                actor=principal,
                project_id=project_id,
                action="api_key.create",
                target_type="api_key",
                target=f"{row.id}:{row.name}",
                after=described,
            )
        return {**described, "key": key}

    async def list(self, project_id: str, principal: Principal) -> list[dict[str, Any]]:
        _require_admin(principal, project_id)
        await self.tessera.catalog.get(project_id)
        async with self.tessera.db.engine.connect() as conn:
            rows = (
                await conn.execute(
                    sa.select(api_keys)
                    .where(api_keys.c.project_id == project_id)
                    .order_by(api_keys.c.id)
                )
            ).all()
        return [describe(row) for row in rows]

    async def revoke(self, project_id: str, key_id: int, principal: Principal) -> None:
        """Revoke at once in every process: the resolver caches are evicted over the bus."""
        _require_admin(principal, project_id)
        async with self.tessera.db.engine.begin() as conn:
            row = (
                await conn.execute(
                    api_keys.update()
                    .where(
                        api_keys.c.id == key_id,
                        api_keys.c.project_id == project_id,
                        api_keys.c.revoked_at.is_(None),
                    )
                    .values(revoked_at=datetime.now(UTC))
                    .returning(*api_keys.c)
                )
            ).one_or_none()
            if row is None:
                raise NotFound(f"no active API key {key_id} in this project", code="key_not_found")
            await record_audit(
                conn,
                actor=principal,
                project_id=project_id,
                action="api_key.revoke",
                target_type="api_key",
                target=f"{row.id}:{row.name}",
                after=describe(row),
            )
        self.tessera.keys.evict(row.key_hash)
        await self.tessera.bus.publish(CHANNEL, row.key_hash)
