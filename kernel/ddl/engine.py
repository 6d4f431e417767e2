"""The one engine every schema operation runs through (ARCHITECTURE.md, "Schema changes").

``preview`` validates and plans in a read-only transaction and changes nothing. ``apply``:

1. takes the op's lease (:func:`kernel.ddl.reconcile.op_lease`: its id, locked until the
   op is finished, so a crash anywhere below leaves an op the reconciler marks
   ``failed``/``interrupted``), records it in ``schema_ops`` as ``pending`` (committed),
   then ``running``;
   refuses an op of a project in maintenance mode (checked again in step 2, for a switch
   made meanwhile), then runs the op's concurrent steps, if it has any
   (:mod:`kernel.ddl.concurrent`: outside any transaction, under the same advisory locks;
   undone if anything below fails), so a long build never runs only to be undone;
2. opens one transaction: ``lock_timeout``, the op's lock again (for the transaction's
   length), a shared advisory lock on the project and an
   exclusive one per collection the op names, reloads the catalog *inside* the locks,
   runs the preflight checks, plans, runs the DDL steps, writes the catalog rows, the
   audit event and the op's ``applied`` status, bumps the catalog version; commits;
3. announces the new catalog version on the bus and notifies plugins.

Inside that transaction, after the plan, every reference holder lists what depends on the
names the op changes (a purge with dependents, or a drop with a blocking one, is refused),
and after the catalog writes every holder rewrites its references to renamed names
(:mod:`kernel.references`, :mod:`kernel.ddl.dependents`). A preview lists the same.

Any failure rolls the transaction back (PostgreSQL DDL is transactional, so table and
catalog are exactly as before) and records the op ``failed`` with its error.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from pydantic import BaseModel, ValidationError
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from kernel.audit import record_audit
from kernel.catalog.cache import CHANNEL
from kernel.catalog.loader import load_catalog
from kernel.catalog.model import ProjectCatalog
from kernel.catalog.writer import CatalogWriter
from kernel.db.errors import postgres_error, translate_postgres_error
from kernel.db.schema import projects, schema_ops
from kernel.ddl import dependents
from kernel.ddl.bookkeeping import record_failure, record_pending, record_transition
from kernel.ddl.concurrent import ConcurrentRun, ConcurrentStepFailed, step_failure
from kernel.ddl.history import append_transition, describe_op, one_op, ops_page
from kernel.ddl.inspect import SchemaInspector
from kernel.ddl.operation import (
    ConcurrentStep,
    DdlOperation,
    OpContext,
    Plan,
    Step,
    render_steps,
)
from kernel.ddl.reconcile import hold_in_transaction, op_lease
from kernel.errors import (
    BadRequest,
    Conflict,
    ErrorItem,
    Forbidden,
    NotFound,
    TesseraError,
    Unauthorized,
    ValidationFailed,
)
from kernel.events.bus import RESYNC
from kernel.references import ReferenceContext
from kernel.security.api_keys import CHANNEL as KEYS_CHANNEL
from kernel.security.principal import Principal

if TYPE_CHECKING:
    from kernel.runtime import Tessera


def _run_steps(connection: Connection, steps: list[Step]) -> None:
    operations = Operations(MigrationContext.configure(connection=connection))
    for step in steps:
        step.run(operations)


class SchemaEngine:
    """Previews and applies schema operations for every project of the deployment."""

    def __init__(self, tessera: Tessera) -> None:
        self.tessera = tessera

    # -- resolution and permission ----------------------------------------------------

    def operation_class(self, name: str) -> type[DdlOperation]:
        operation = self.tessera.ddl_operations.get(name)
        if operation is None:
            available = ", ".join(sorted(self.tessera.ddl_operations))
            raise BadRequest(
                f"unknown schema operation {name!r}; available: {available}",
                code="unknown_op",
                field="op",
            )
        return operation

    @staticmethod
    def parse_args(operation: type[DdlOperation], raw: Any) -> BaseModel:
        try:
            return operation.Args.model_validate(raw if raw is not None else {})
        except ValidationError as error:
            raise ValidationFailed(
                items=[
                    ErrorItem(
                        "invalid_argument",
                        problem["msg"],
                        ".".join(["args", *(str(part) for part in problem["loc"])]),
                    )
                    for problem in error.errors()
                ]
            ) from None

    @staticmethod
    def authorize(
        principal: Principal, project_id: str, operation: type[DdlOperation] | None
    ) -> None:
        """Refuse callers who may not change the schema (``operation`` ``None``: an unknown
        op name, checked before it is recorded so strangers cannot write to the history)."""
        if principal.kind == "anonymous":
            raise Unauthorized("schema changes need credentials")
        if not principal.belongs_to(project_id):
            raise Forbidden("credentials of another project", code="wrong_project")
        if not principal.can("schema:write"):
            raise Forbidden("schema changes need the schema:write scope", code="missing_scope")
        if operation is not None and operation.admin_only and not principal.is_admin:
            raise Forbidden(f"only admins may run {operation.name}", code="admin_only")

    # -- preview ----------------------------------------------------------------------

    async def preview(
        self, project_id: str, op_name: str, raw_args: Any, principal: Principal
    ) -> dict[str, Any]:
        """Plan ``op_name`` against the current catalog; returns DDL, warnings, impact.

        Runs in a read-only transaction that is rolled back: it cannot change anything.
        An op with concurrent steps previews them first, then its transaction's steps as
        apply plans them once they ran (``concurrent_done``); its impact is read as
        without them (what stored rows would refuse).
        """
        await self.tessera.catalog.get(project_id)
        operation = self.operation_class(op_name)
        self.authorize(principal, project_id, operation)
        args = self.parse_args(operation, raw_args)
        async with self.tessera.db.engine.connect() as conn:
            await conn.execute(sa.text("SET TRANSACTION READ ONLY"))
            await self._limit_lock_waits(conn)
            catalog = await self._load(conn, project_id)
            op = operation(args, OpContext(catalog, self.tessera, principal, datetime.now(UTC)))
            plan = op.plan()
            inspector = SchemaInspector(conn, catalog.project.schema)
            try:
                await op.preflight(inspector)
                concurrent = await op.concurrent_steps(inspector)
                impact = await op.impact(inspector)
                found = await self._references(conn, catalog, op)
            except Exception as error:
                translated = translate_postgres_error(error)
                if translated is None:
                    raise
                raise translated from None
            await conn.rollback()
        if concurrent:  # the transaction's steps as apply plans them, after those
            plan = operation(args, dataclasses.replace(op.context, concurrent_done=True)).plan()
        if found:
            impact = {**impact, "dependents": [item.describe() for item in found]}
        return {
            "op": operation.name,
            "args": args.model_dump(mode="json"),
            "ddl": render_steps(concurrent) + render_steps(plan.steps),
            "steps": [step.description for step in [*concurrent, *plan.steps]],
            "warnings": plan.warnings + dependents.warnings(found),
            "safe": plan.safe,
            "wizard": plan.wizard,
            "impact": impact,
        }

    # -- apply ------------------------------------------------------------------------

    async def apply(
        self,
        project_id: str,
        op_name: str,
        raw_args: Any,
        principal: Principal,
        *,
        override_maintenance: bool = False,
    ) -> dict[str, Any]:
        """Apply ``op_name``; returns the ``schema_ops`` row.

        A request refused before anything runs — unknown op, invalid arguments, a plan
        that refuses (unknown type, reserved or taken name, unsafe change) — raises its
        client error and is not recorded: the history shows changes, not typos. Once the
        op is recorded, any failure (quota, locks, preflight, DDL, a reference holder) is
        recorded ``failed`` with its error and raised. ``override_maintenance`` lets an
        op through while the project is in maintenance mode."""
        await self.tessera.catalog.get(project_id)
        self.authorize(principal, project_id, self.tessera.ddl_operations.get(op_name))
        operation = self.operation_class(op_name)
        args = self.parse_args(operation, raw_args)
        catalog, concurrent = await self._plan_unrecorded(project_id, operation, args, principal)
        async with op_lease(self.tessera.db) as op_id:
            await record_pending(self.tessera.db, op_id, project_id, op_name, raw_args, principal)
            try:
                for policy in self.tessera.quota_policies:
                    await policy.check_ddl(project_id, op_name, args.model_dump(mode="json"))
                await record_transition(self.tessera.db, op_id, "running")
                self._refuse_in_maintenance(catalog, override_maintenance)
                prepared = await self._run_concurrent(
                    project_id, operation, args, principal, concurrent
                )
                try:
                    row, version, keys_changed = await self._apply_locked(
                        op_id,
                        project_id,
                        operation,
                        args,
                        principal,
                        override_maintenance,
                        prepared,
                    )
                except BaseException:
                    await prepared.undo()
                    raise
            except TesseraError as error:
                await record_failure(self.tessera.db, op_id, error)
                raise
            except Exception as error:
                translated = translate_postgres_error(error)
                if translated is None:
                    detail = f"{type(error).__name__}: {error}"
                    await record_failure(self.tessera.db, op_id, None, detail=detail)
                    raise
                await record_failure(self.tessera.db, op_id, translated)
                raise translated from None
        await self.announce(project_id, version)
        if keys_changed:
            # Cached keys still carry the old collection restrictions: forget them everywhere.
            self.tessera.keys.evict(RESYNC)
            await self.tessera.bus.publish(KEYS_CHANNEL, RESYNC)
        described = describe_op(row)
        await self.tessera.plugins.notify(
            "on_schema_applied", tessera=self.tessera, project_id=project_id, op=described
        )
        return described

    async def _plan_unrecorded(
        self,
        project_id: str,
        operation: type[DdlOperation],
        args: BaseModel,
        principal: Principal,
    ) -> tuple[ProjectCatalog, list[ConcurrentStep]]:
        """Plan against the current catalog before recording anything; raises the plan's
        refusal, else returns the catalog read and the op's concurrent steps. Apply plans
        again inside the locks, where a change made meanwhile by someone else is caught
        and recorded."""
        async with self.tessera.db.engine.connect() as conn:
            await self._limit_lock_waits(conn)
            catalog = await self._load(conn, project_id)
            op = operation(args, OpContext(catalog, self.tessera, principal, datetime.now(UTC)))
            self._require_safe(op.plan())
            inspector = SchemaInspector(conn, catalog.project.schema)
            try:
                concurrent = await op.concurrent_steps(inspector)
            except Exception as error:
                raise translate_postgres_error(error) or error from None
            await conn.rollback()
        return catalog, concurrent

    async def _run_concurrent(
        self,
        project_id: str,
        operation: type[DdlOperation],
        args: BaseModel,
        principal: Principal,
        steps: list[ConcurrentStep],
    ) -> ConcurrentRun:
        """Run the op's concurrent steps (none: nothing happens). A failed step is undone
        and explained by the op's own refusal when stored rows break what it adds (the
        duplicates a unique index met), else as a 409 naming the step."""
        run = ConcurrentRun(
            self.tessera.db,
            project_id,
            operation.lock_names(args),
            self.tessera.settings.ddl_lock_timeout_ms,
            steps,
        )
        try:
            await run.run()
        except ConcurrentStepFailed as failed:
            async with self.tessera.db.engine.connect() as conn:
                await self._limit_lock_waits(conn)
                catalog = await self._load(conn, project_id)
                op = operation(args, OpContext(catalog, self.tessera, principal, datetime.now(UTC)))
                op.plan()
                op.refuse(await op.impact(SchemaInspector(conn, catalog.project.schema)))
                await conn.rollback()
            raise step_failure(failed) from None
        return run

    async def _limit_lock_waits(self, conn: AsyncConnection) -> None:
        """Reads of a table behind a long-held lock refuse (409) rather than hang."""
        timeout = f"{self.tessera.settings.ddl_lock_timeout_ms}ms"
        await conn.execute(sa.select(sa.func.set_config("lock_timeout", timeout, True)))

    async def announce(self, project_id: str, version: int | None) -> None:
        """Drop this process's snapshot and tell every other process (``None``: deleted)."""
        self.tessera.catalog.invalidate(project_id, version)
        await self.tessera.bus.publish(CHANNEL, self.tessera.catalog.message(project_id, version))

    async def _apply_locked(
        self,
        op_id: int,
        project_id: str,
        operation: type[DdlOperation],
        args: BaseModel,
        principal: Principal,
        override_maintenance: bool,
        prepared: ConcurrentRun,
    ) -> tuple[Any, int, bool]:
        settings = self.tessera.settings
        now = datetime.now(UTC)
        async with self.tessera.db.engine.begin() as conn:
            await conn.execute(
                sa.select(
                    sa.func.set_config("lock_timeout", f"{settings.ddl_lock_timeout_ms}ms", True)
                )
            )
            await hold_in_transaction(conn, op_id)
            await lock_project(conn, project_id, shared=True)
            for name in sorted(set(operation.lock_names(args))):
                await conn.execute(
                    sa.select(
                        sa.func.pg_advisory_xact_lock(
                            sa.func.hashtext(project_id), sa.func.hashtext(name)
                        )
                    )
                )
            catalog = await self._load(conn, project_id)
            op = operation(
                args,
                OpContext(catalog, self.tessera, principal, now, bool(prepared.started)),
            )
            plan = op.plan()
            self._require_safe(plan)
            await self._preflight(conn, catalog, op, args, override_maintenance)
            inspector = SchemaInspector(conn, catalog.project.schema)
            await op.preflight(inspector)
            found = await self._references(conn, catalog, op)
            refused = dependents.refusal(found)
            if refused is not None:
                raise refused
            impact = await op.impact(inspector)
            op.refuse(impact)
            if found:
                impact = {**impact, "dependents": [item.describe() for item in found]}
            ddl = prepared.ddl + render_steps(plan.steps)
            try:
                await conn.run_sync(_run_steps, plan.steps)
            except Exception as error:
                raise self._ddl_error(error) from None
            await op.migrate_data(conn)
            writer = CatalogWriter(conn, project_id, now)
            result = await op.write_catalog(writer)
            rewritten = await dependents.rewrite(
                self.tessera.reference_holders,
                ReferenceContext(conn, project_id, catalog, writer, now),
                op.changes(),
            )
            if rewritten:
                result = {
                    **result,
                    "references_rewritten": [item.describe() for item in rewritten],
                }
            target_type, target = op.target()
            await record_audit(
                conn,
                actor=principal,
                project_id=project_id,
                action=f"schema.{operation.name}",
                target_type=target_type,
                target=target,
                before=op.before(),
                after=result,
            )
            version = (
                await conn.execute(
                    projects.update()
                    .where(projects.c.id == project_id)
                    .values(catalog_version=projects.c.catalog_version + 1, updated_at=now)
                    .returning(projects.c.catalog_version)
                )
            ).scalar_one()
            row = (
                await conn.execute(
                    schema_ops.update()
                    .where(schema_ops.c.id == op_id)
                    .values(
                        status="applied",
                        ddl=ddl,
                        warnings=plan.warnings + dependents.warnings(found),
                        impact=impact,
                        result=result,
                        transitions=append_transition(
                            schema_ops.c.transitions, "applied", datetime.now(UTC)
                        ),
                        finished_at=sa.func.clock_timestamp(),
                    )
                    .returning(*schema_ops.c)
                )
            ).one()
        return row, version, writer.keys_changed

    async def _references(
        self,
        conn: AsyncConnection,
        catalog: ProjectCatalog,
        op: DdlOperation,
    ) -> list[dependents.Found]:
        """Every holder's dependents of what ``op`` changes (read only)."""
        context = ReferenceContext(conn, catalog.project.id, catalog, None, op.context.now)
        return await dependents.references(self.tessera.reference_holders, context, op.changes())

    @staticmethod
    def _require_safe(plan: Plan) -> None:
        if not plan.safe:
            raise ValidationFailed(
                "this change is not safe to apply in place; preview it to see the guided "
                "steps that do it without losing data",
                code="unsafe_change",
            )

    async def _preflight(
        self,
        conn: AsyncConnection,
        catalog: ProjectCatalog,
        op: DdlOperation,
        args: BaseModel,
        override_maintenance: bool,
    ) -> None:
        """Refuse early rather than queue: maintenance mode, long-held locks on the tables."""
        self._refuse_in_maintenance(catalog, override_maintenance)
        inspector = SchemaInspector(conn, catalog.project.schema)
        threshold = self.tessera.settings.ddl_lock_timeout_ms
        for name in op.lock_names(args):
            collection = catalog.collections.get(name)
            if collection is None:
                continue
            holders = await inspector.blocking_locks(collection, threshold)
            if holders:
                oldest = max(holder["seconds"] for holder in holders)
                raise Conflict(
                    f"collection {name!r} is locked by {len(holders)} other transaction(s), "
                    f"the oldest running for {oldest:.0f}s; try again when they finish",
                    code="table_busy",
                ) from None

    @staticmethod
    def _refuse_in_maintenance(catalog: ProjectCatalog, override_maintenance: bool) -> None:
        """409 ``maintenance_mode`` for a project in maintenance mode, unless overridden."""
        if catalog.project.settings.maintenance and not override_maintenance:
            raise Conflict(
                "the project is in maintenance mode: schema changes are paused. Switch "
                "maintenance off, or apply with override_maintenance: true",
                code="maintenance_mode",
            )

    @staticmethod
    def _ddl_error(error: Exception) -> Exception:
        pg = postgres_error(error)
        if pg is not None and pg.sqlstate == "23502":
            return ValidationFailed(
                "existing records would have no value for a required field; give the field "
                "a default, or make it optional",
                code="required_needs_default",
            )
        return translate_postgres_error(error) or error

    async def _load(self, conn: AsyncConnection, project_id: str) -> ProjectCatalog:
        catalog = await load_catalog(conn, project_id, self.tessera.field_types)
        if catalog is None:
            raise NotFound(f"project {project_id!r} not found", code="project_not_found")
        return catalog

    # -- history ----------------------------------------------------------------------

    async def history(
        self,
        project_id: str,
        principal: Principal,
        *,
        status: str | None = None,
        op: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> dict[str, Any]:
        """A page of the project's operations, newest first (see :func:`ops_page`)."""
        return await ops_page(
            self.tessera, principal, project_id, status=status, op=op, limit=limit, cursor=cursor
        )

    async def operation(self, project_id: str, op_id: int, principal: Principal) -> dict[str, Any]:
        """One operation with its status transitions (404 ``op_not_found``)."""
        return await one_op(self.tessera, principal, project_id, op_id)


async def lock_project(conn: AsyncConnection, project_id: str, *, shared: bool) -> None:
    """Take the project's advisory lock for this transaction: shared for schema ops,
    exclusive for whole-project changes (delete, restore)."""
    function = sa.func.pg_advisory_xact_lock_shared if shared else sa.func.pg_advisory_xact_lock
    await conn.execute(sa.select(function(sa.func.hashtext(sa.literal("tessera:" + project_id)))))
