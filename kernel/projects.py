"""Projects: create (with schema ``p_<id>``), list, read, update, delete."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.exc import IntegrityError

from kernel.audit import record_audit
from kernel.catalog.model import ProjectSettings
from kernel.catalog.names import check_project_id, project_schema
from kernel.config import describe_validation_error
from kernel.db.schema import api_keys, events, projects
from kernel.ddl.engine import lock_project
from kernel.errors import Conflict, Forbidden, NotFound, Unauthorized, ValidationFailed
from kernel.security.api_keys import CHANNEL as KEYS_CHANNEL
from kernel.security.principal import Principal
from kernel.security.token_cache import CHANNEL as TOKENS_CHANNEL

if TYPE_CHECKING:
    from kernel.runtime import Tessera


class ProjectCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    name: str = Field(min_length=1, max_length=200)
    settings: dict[str, Any] = Field(default_factory=dict)


class ProjectUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    settings: dict[str, Any] | None = None


def describe(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "schema": project_schema(row.id),
        "catalog_version": row.catalog_version,
        "settings": ProjectSettings.model_validate(row.settings).model_dump(),
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


def _settings(raw: dict[str, Any], field: str) -> dict[str, Any]:
    try:
        return ProjectSettings.model_validate(raw).model_dump()
    except ValidationError as error:
        raise ValidationFailed(
            describe_validation_error(field, error), code="invalid_settings"
        ) from None


def _require_admin(principal: Principal) -> None:
    if principal.kind == "anonymous":
        raise Unauthorized("sign in as an admin to manage projects", code="unauthorized")
    if not principal.is_admin:
        raise Forbidden("only admins manage projects", code="admin_only")


class ProjectService:
    def __init__(self, tessera: Tessera) -> None:
        self.tessera = tessera

    async def create(self, spec: ProjectCreate, principal: Principal) -> dict[str, Any]:
        _require_admin(principal)
        project_id = check_project_id(spec.id)
        settings = _settings(spec.settings, "settings")
        schema = project_schema(project_id)
        try:
            async with self.tessera.db.engine.begin() as conn:
                await lock_project(conn, project_id, shared=False)
                row = (
                    await conn.execute(
                        projects.insert()
                        .values(id=project_id, name=spec.name, settings=settings)
                        .returning(*projects.c)
                    )
                ).one()
                await conn.execute(sa.schema.CreateSchema(schema))
                after = describe(row)
                await record_audit(
                    conn,
                    actor=principal,
                    project_id=project_id,
                    action="project.create",
                    target_type="project",
                    target=project_id,
                    after=after,
                )
        except IntegrityError:
            raise Conflict(
                f"project {project_id!r} already exists", code="duplicate", field="id"
            ) from None
        except sa.exc.ProgrammingError as error:
            if "already exists" in str(error):
                raise Conflict(
                    f"schema {schema!r} already exists in the database",
                    code="duplicate",
                    field="id",
                ) from None
            raise
        return after

    async def list(self, principal: Principal) -> list[dict[str, Any]]:
        """Every project for an admin, its own for a project's key or user; 401 for nobody
        (as for reading one project)."""
        if principal.kind == "anonymous":
            raise Unauthorized("sign in or send an API key", code="unauthorized")
        statement = sa.select(projects).order_by(projects.c.id)
        if not principal.is_admin:
            if principal.project_id is None:
                return []
            statement = statement.where(projects.c.id == principal.project_id)
        async with self.tessera.db.engine.connect() as conn:
            return [describe(row) for row in (await conn.execute(statement)).all()]

    async def get(self, project_id: str, principal: Principal) -> dict[str, Any]:
        if principal.kind == "anonymous":
            raise Unauthorized("sign in or send an API key", code="unauthorized")
        if not principal.belongs_to(project_id):
            raise Forbidden("credentials of another project", code="wrong_project")
        async with self.tessera.db.engine.connect() as conn:
            row = (
                await conn.execute(sa.select(projects).where(projects.c.id == project_id))
            ).one_or_none()
        if row is None:
            raise NotFound(f"project {project_id!r} not found", code="project_not_found")
        return describe(row)

    async def update(
        self, project_id: str, spec: ProjectUpdate, principal: Principal
    ) -> dict[str, Any]:
        """Rename and/or change settings; settings are part of the catalog, so its version
        moves and every process picks them up."""
        _require_admin(principal)
        async with self.tessera.db.engine.begin() as conn:
            current = (
                await conn.execute(
                    sa.select(projects).where(projects.c.id == project_id).with_for_update()
                )
            ).one_or_none()
            if current is None:
                raise NotFound(f"project {project_id!r} not found", code="project_not_found")
            values: dict[str, Any] = {"updated_at": datetime.now(UTC)}
            if spec.name is not None:
                values["name"] = spec.name
            if spec.settings is not None:
                values["settings"] = _settings({**current.settings, **spec.settings}, "settings")
                values["catalog_version"] = projects.c.catalog_version + 1
            row = (
                await conn.execute(
                    projects.update()
                    .where(projects.c.id == project_id)
                    .values(**values)
                    .returning(*projects.c)
                )
            ).one()
            await record_audit(
                conn,
                actor=principal,
                project_id=project_id,
                action="project.update",
                target_type="project",
                target=project_id,
                before=describe(current),
                after=describe(row),
            )
        await self.tessera.schema.announce(project_id, row.catalog_version)
        return describe(row)

    async def delete(self, project_id: str, confirm: str | None, principal: Principal) -> None:
        """Drop the project's schema and catalog rows. ``confirm`` must repeat the id."""
        _require_admin(principal)
        if confirm != project_id:
            raise ValidationFailed(
                f"deleting a project removes all its data; confirm with confirm={project_id}",
                code="confirmation_required",
                field="confirm",
            )
        async with self.tessera.db.engine.begin() as conn:
            await lock_project(conn, project_id, shared=False)
            hashes = sa.select(api_keys.c.key_hash).where(api_keys.c.project_id == project_id)
            key_hashes = (await conn.execute(hashes)).scalars().all()
            row = (
                await conn.execute(
                    projects.delete().where(projects.c.id == project_id).returning(*projects.c)
                )
            ).one_or_none()
            if row is None:
                raise NotFound(f"project {project_id!r} not found", code="project_not_found")
            await conn.execute(
                sa.schema.DropSchema(project_schema(project_id), cascade=True, if_exists=True)
            )
            # The outbox has no foreign key to projects (it is written on the hot path).
            await conn.execute(events.delete().where(events.c.project_id == project_id))
            await record_audit(
                conn,
                actor=principal,
                project_id=project_id,
                action="project.delete",
                target_type="project",
                target=project_id,
                before=describe(row),
            )
        await self.tessera.schema.announce(project_id, None)
        # Its keys are gone with it: forget them in every process's resolver cache now, or
        # they would keep working (even against a new project with the same id) until TTL.
        for key_hash in key_hashes:
            self.tessera.keys.evict(key_hash)
            await self.tessera.bus.publish(KEYS_CHANNEL, key_hash)
        # So are its users: their cached tokens go the same way.
        self.tessera.token_cache.evict(project_id)
        await self.tessera.bus.publish(TOKENS_CHANNEL, project_id)
