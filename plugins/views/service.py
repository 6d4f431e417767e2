"""The views catalog: create, list, change (a new version), activate an older version,
delete.

Only admins and keys with ``schema:write`` define views; every change validates the
definition against the catalog first (a 422 never touches the active version) and is
audited in the same transaction.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from kernel import Conflict, KernelSurface, NotFound, Principal
from kernel.audit import record_audit
from kernel.security.access import require_member, require_schema_reader
from plugins.views.cache import view_cache
from plugins.views.definition import CompiledView, Definition, NewView, compile_definition
from plugins.views.meta import describe_meta
from plugins.views.tables import list_active, read_active, view_versions, views


def describe(row: Any) -> dict[str, Any]:
    """A view as listed: its name, active version and that version's definition."""
    return {
        "name": row.name,
        "version": row.active_version,
        **row.definition,
        "created_by": row.created_by,
        "created_at": row.created_at,
    }


class ViewService:
    def __init__(self, tessera: KernelSurface) -> None:
        self.tessera = tessera

    async def compile(self, project_id: str, definition: Definition) -> CompiledView:
        """``definition`` checked against the project's current catalog (422 otherwise)."""
        catalog = await self.tessera.catalog.get(project_id)
        return compile_definition(definition, catalog, self.tessera.operators, datetime.now(UTC))

    async def _writable(self, project_id: str, principal: Principal) -> None:
        await self.tessera.catalog.get(project_id)
        require_schema_reader(principal, project_id)

    async def create(self, project_id: str, spec: NewView, principal: Principal) -> dict[str, Any]:
        await self._writable(project_id, principal)
        definition = spec.definition()
        await self.compile(project_id, definition)
        stored = definition.model_dump(exclude_none=True)
        try:
            async with self.tessera.db.engine.begin() as conn:
                view_id = (
                    await conn.execute(
                        views.insert()
                        .values(
                            project_id=project_id,
                            name=spec.name,
                            active_version=1,
                            created_by=principal.actor(),
                        )
                        .returning(views.c.id)
                    )
                ).scalar_one()
                await self._add_version(conn, view_id, 1, stored, principal)
                await self._audit(conn, principal, project_id, "view.create", spec.name, stored)
        except IntegrityError:
            raise Conflict(f"view {spec.name!r} exists", code="view_exists") from None
        return await self.get(project_id, spec.name, principal)

    async def list(self, project_id: str, principal: Principal) -> list[dict[str, Any]]:
        await self._writable(project_id, principal)
        return [describe(row) for row in await list_active(self.tessera.db.engine, project_id)]

    async def get(self, project_id: str, name: str, principal: Principal) -> dict[str, Any]:
        await self._writable(project_id, principal)
        return describe(await self.active(project_id, name))

    async def active(self, project_id: str, name: str) -> Any:
        """The view's row with its active definition; 404 ``view_not_found``."""
        return await read_active(self.tessera.db.engine, project_id, name)

    async def meta(
        self, project_id: str, name: str, principal: Principal, base_url: str
    ) -> dict[str, Any]:
        """How to call the view (``GET .../meta``), for a member of the project: described
        from the view as the process's view cache keeps it compiled (404
        ``view_not_found``; 409 ``view_outdated`` as for running it)."""
        require_member(principal, project_id)
        _, active = await view_cache(self.tessera).active(project_id, name)
        view = active.view
        return describe_meta(
            view, base_url, project_id, name, view.definition.sort, self.tessera.operators
        )

    async def change(
        self, project_id: str, name: str, definition: Definition, principal: Principal
    ) -> dict[str, Any]:
        """A new version of the view, made active."""
        await self._writable(project_id, principal)
        await self.compile(project_id, definition)
        stored = definition.model_dump(exclude_none=True)
        async with self.tessera.db.engine.begin() as conn:
            row = await self._locked(conn, project_id, name)
            version = (
                await conn.execute(
                    sa.select(sa.func.max(view_versions.c.version)).where(
                        view_versions.c.view_id == row.id
                    )
                )
            ).scalar_one() + 1
            await self._add_version(conn, row.id, version, stored, principal)
            await conn.execute(
                views.update().where(views.c.id == row.id).values(active_version=version)
            )
            await self._audit(
                conn, principal, project_id, "view.change", name, stored, version=version
            )
        await view_cache(self.tessera).announce(project_id, name)
        return await self.get(project_id, name, principal)

    async def versions(self, project_id: str, name: str, principal: Principal) -> list[dict]:
        await self._writable(project_id, principal)
        row = await self.active(project_id, name)
        async with self.tessera.db.engine.connect() as conn:
            rows = (
                await conn.execute(
                    sa.select(view_versions)
                    .where(view_versions.c.view_id == row.id)
                    .order_by(view_versions.c.version.desc())
                )
            ).all()
        return [
            {
                "version": item.version,
                "active": item.version == row.active_version,
                "created_at": item.created_at,
                "created_by": item.created_by,
                "definition": item.definition,
            }
            for item in rows
        ]

    async def activate(
        self, project_id: str, name: str, version: int, principal: Principal
    ) -> dict[str, Any]:
        """Make an earlier (or later) version active again: a rollback. The version must
        still validate against the current catalog."""
        await self._writable(project_id, principal)
        async with self.tessera.db.engine.begin() as conn:
            row = await self._locked(conn, project_id, name)
            definition = (
                await conn.execute(
                    sa.select(view_versions.c.definition).where(
                        view_versions.c.view_id == row.id, view_versions.c.version == version
                    )
                )
            ).scalar_one_or_none()
            if definition is None:
                raise NotFound(f"view {name!r} has no version {version}", code="version_not_found")
            await self.compile(project_id, Definition.model_validate(definition))
            await conn.execute(
                views.update().where(views.c.id == row.id).values(active_version=version)
            )
            await self._audit(
                conn,
                principal,
                project_id,
                "view.activate",
                name,
                {"version": version},
                before={"version": row.active_version},
            )
        await view_cache(self.tessera).announce(project_id, name)
        return await self.get(project_id, name, principal)

    async def delete(self, project_id: str, name: str, principal: Principal) -> None:
        """Remove view ``name`` with every version (404 ``view_not_found``): its endpoint
        answers 404 in every process from then on, it leaves the project's OpenAPI
        document, and it no longer holds the collections it read (a purge may go on)."""
        await self._writable(project_id, principal)
        async with self.tessera.db.engine.begin() as conn:
            row = await self._locked(conn, project_id, name)
            versions = (
                await conn.execute(
                    sa.select(sa.func.count()).where(view_versions.c.view_id == row.id)
                )
            ).scalar_one()
            definition = (
                await conn.execute(
                    sa.select(view_versions.c.definition).where(
                        view_versions.c.view_id == row.id,
                        view_versions.c.version == row.active_version,
                    )
                )
            ).scalar_one()
            # Versions go with the view (ON DELETE CASCADE).
            await conn.execute(views.delete().where(views.c.id == row.id))
            await self._audit(
                conn,
                principal,
                project_id,
                "view.delete",
                name,
                None,
                before={
                    "version": row.active_version,
                    "versions": versions,
                    "definition": definition,
                },
            )
        await view_cache(self.tessera).announce(project_id, name)

    async def _locked(self, conn: Any, project_id: str, name: str) -> Any:
        row = (
            await conn.execute(
                sa.select(views)
                .where(views.c.project_id == project_id, views.c.name == name)
                .with_for_update()
            )
        ).one_or_none()
        if row is None:
            raise NotFound(f"view {name!r} not found", code="view_not_found")
        return row

    @staticmethod
    async def _add_version(
        conn: Any, view_id: int, version: int, definition: dict, principal: Principal
    ) -> None:
        await conn.execute(
            view_versions.insert().values(
                view_id=view_id,
                version=version,
                definition=definition,
                created_by=principal.actor(),
            )
        )

    @staticmethod
    async def _audit(
        conn: Any,
        principal: Principal,
        project_id: str,
        action: str,
        name: str,
        after: Any,
        before: Any = None,
        version: int | None = None,
    ) -> None:
        if version is not None:
            after = {"version": version, "definition": after}
        await record_audit(
            conn,
            actor=principal,
            project_id=project_id,
            action=action,
            target_type="view",
            target=name,
            before=before,
            after=after,
        )
