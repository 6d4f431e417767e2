"""Managing webhooks and workflows: what the REST routes and the admin pages both call.

Every method checks that the principal may manage the project's jobs (admins, and keys with
``schema:write``), validates its input, and audits the change in the same transaction.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from kernel import (
    Conflict,
    ErrorItem,
    KernelSurface,
    NotFound,
    Principal,
    ValidationFailed,
    newest_first,
)
from kernel.audit import record_audit
from kernel.expr import ExpressionError
from kernel.security.access import require_schema_reader
from plugins.jobs.conditions import bind_condition
from plugins.jobs.matching import pattern_collection
from plugins.jobs.signing import new_salt, webhook_secret
from plugins.jobs.ssrf import TargetRefused, resolve_target
from plugins.jobs.tables import webhook_deliveries, webhooks, workflow_runs, workflows

EVENT_PATTERN = re.compile(r"^(\*|(\*|[a-z][a-z0-9_]{0,62})\.(\*|insert|update|delete))$")
DeliveryStatus = Literal["pending", "delivering", "succeeded", "failed"]
RunStatus = Literal["pending", "running", "succeeded", "failed", "cut_off"]


class WebhookSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(max_length=2000)
    events: list[str] = Field(min_length=1, max_length=50)
    description: str = Field(default="", max_length=500)

    @field_validator("events")
    @classmethod
    def _patterns(cls, events: list[str]) -> list[str]:
        for pattern in events:
            if not EVENT_PATTERN.fullmatch(pattern):
                raise ValueError(
                    f"{pattern!r}: use <collection>.<insert|update|delete>, <collection>.*, "
                    "*.<type> or *"
                )
        return sorted(set(events))


class Trigger(BaseModel):
    model_config = ConfigDict(extra="forbid")

    collection: str
    events: list[Literal["insert", "update", "delete"]] = Field(min_length=1)
    condition: str | None = Field(default=None, max_length=4000)


class ActionSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: str
    options: dict[str, Any] = Field(default_factory=dict)


class WorkflowSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    trigger: Trigger
    actions: list[ActionSpec] = Field(min_length=1, max_length=20)
    active: bool = True


class WorkflowUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    active: bool | None = None


def describe_webhook(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "url": row.url,
        "events": row.events,
        "description": row.description,
        "active": row.active,
        "created_by": row.created_by,
        "created_at": row.created_at,
    }


def describe_delivery(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "event_id": row.event_id,
        "event": row.event_type,
        "status": row.status,
        "attempts": row.attempts,
        "last_status_code": row.last_status_code,
        "last_error": row.last_error,
        "next_attempt_at": row.next_attempt_at if row.status == "pending" else None,
        "created_at": row.created_at,
        "delivered_at": row.delivered_at,
    }


def describe_workflow(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "trigger": {k: v for k, v in row.trigger.items() if k != "collection_id"},
        "actions": row.actions,
        "active": row.active,
        "created_by": row.created_by,
        "created_at": row.created_at,
    }


def describe_run(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "event_id": row.event_id,
        "status": row.status,
        "depth": row.depth,
        "attempts": row.attempts,
        "input": row.input,
        "steps": row.steps,
        "error": row.error,
        "started_at": row.started_at,
        "finished_at": row.finished_at,
        "duration_ms": row.duration_ms,
    }


class JobsService:
    def __init__(self, tessera: KernelSurface) -> None:
        self.tessera = tessera

    @property
    def host(self) -> Any:
        return self.tessera.state["jobs"]

    async def _checked(self, project_id: str, principal: Principal) -> None:
        await self.tessera.catalog.get(project_id)
        require_schema_reader(principal, project_id)

    async def _audit(
        self,
        conn: Any,
        principal: Principal,
        project_id: str,
        action: str,
        target: str,
        **states: Any,
    ) -> None:
        await record_audit(
            conn,
            actor=principal,
            project_id=project_id,
            action=action,
            target_type=action.split(".")[0],
            target=target,
            **states,
        )

    async def _one(self, table: Any, project_id: str, item_id: int, what: str) -> Any:
        async with self.tessera.db.engine.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(table).where(table.c.id == item_id, table.c.project_id == project_id)
                )
            ).one_or_none()
        if row is None:
            raise NotFound(f"{what} {item_id} not found", code=f"{what}_not_found")
        return row

    # -- webhooks ---------------------------------------------------------------------

    async def create_webhook(
        self, project_id: str, spec: WebhookSpec, principal: Principal
    ) -> dict[str, Any]:
        """The new webhook, with its ``secret`` (shown this once, never stored)."""
        await self._checked(project_id, principal)
        await self._check_patterns(project_id, spec.events)
        try:
            await resolve_target(spec.url, self.host.config.deny_private_targets)
        except TargetRefused as refused:
            raise ValidationFailed(str(refused), code="target_refused", field="url") from None
        salt = new_salt()
        async with self.tessera.db.engine.begin() as conn:
            row = (
                await conn.execute(
                    webhooks.insert()
                    .values(
                        project_id=project_id,
                        url=spec.url,
                        events=spec.events,
                        description=spec.description,
                        secret_salt=salt,
                        created_by=principal.actor(),
                    )
                    .returning(*webhooks.c)
                )
            ).one()
            described = describe_webhook(row)
            await self._audit(
                conn, principal, project_id, "webhook.create", str(row.id), after=described
            )
        return {**described, "secret": webhook_secret(self.tessera.secret_key, salt)}

    async def _check_patterns(self, project_id: str, patterns: list[str]) -> None:
        """A 422 naming each pattern whose collection the project does not have (a live
        alias names its collection, so it counts as known)."""
        catalog = await self.tessera.catalog.get(project_id)
        now = datetime.now(UTC)
        unknown = [
            ErrorItem(
                "collection_not_found",
                f"{pattern!r}: the project has no collection {collection!r}",
                "events",
            )
            for pattern in patterns
            if (collection := pattern_collection(pattern)) is not None
            and catalog.resolve_collection(collection, now) is None
        ]
        if unknown:
            raise ValidationFailed(items=unknown)

    async def list_webhooks(self, project_id: str, principal: Principal) -> list[dict[str, Any]]:
        await self._checked(project_id, principal)
        async with self.tessera.db.engine.connect() as conn:
            rows = (
                await conn.execute(
                    sa.select(webhooks)
                    .where(webhooks.c.project_id == project_id)
                    .order_by(webhooks.c.id)
                )
            ).all()
        return [describe_webhook(row) for row in rows]

    async def delete_webhook(self, project_id: str, webhook_id: int, principal: Principal) -> None:
        await self._checked(project_id, principal)
        row = await self._one(webhooks, project_id, webhook_id, "webhook")
        async with self.tessera.db.engine.begin() as conn:
            await conn.execute(webhooks.delete().where(webhooks.c.id == webhook_id))
            await self._audit(
                conn,
                principal,
                project_id,
                "webhook.delete",
                str(webhook_id),
                before=describe_webhook(row),
            )

    async def deliveries(
        self,
        project_id: str,
        webhook_id: int,
        principal: Principal,
        status: DeliveryStatus | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> dict[str, Any]:
        await self._checked(project_id, principal)
        await self._one(webhooks, project_id, webhook_id, "webhook")
        statement = sa.select(webhook_deliveries).where(
            webhook_deliveries.c.webhook_id == webhook_id
        )
        if status:
            statement = statement.where(webhook_deliveries.c.status == status)
        return await newest_first(
            self.tessera,
            statement,
            webhook_deliveries,
            scope=f"deliveries:{webhook_id}",
            limit=limit,
            cursor=cursor,
            describe=describe_delivery,
        )

    async def redeliver(
        self, project_id: str, webhook_id: int, delivery_id: int, principal: Principal
    ) -> dict[str, Any]:
        """Send a finished delivery again; its attempts start over."""
        await self._checked(project_id, principal)
        async with self.tessera.db.engine.begin() as conn:
            row = (
                await conn.execute(
                    webhook_deliveries.update()
                    .where(
                        webhook_deliveries.c.id == delivery_id,
                        webhook_deliveries.c.webhook_id == webhook_id,
                        webhook_deliveries.c.project_id == project_id,
                        webhook_deliveries.c.status.in_(("failed", "succeeded")),
                    )
                    .values(
                        status="pending",
                        attempts=0,
                        next_attempt_at=sa.func.now(),
                        lease_expires_at=None,
                    )
                    .returning(*webhook_deliveries.c)
                )
            ).one_or_none()
            if row is None:
                await self._one(webhooks, project_id, webhook_id, "webhook")
                exists = await conn.scalar(
                    sa.select(webhook_deliveries.c.id).where(
                        webhook_deliveries.c.id == delivery_id,
                        webhook_deliveries.c.webhook_id == webhook_id,
                    )
                )
                if exists is None:
                    raise NotFound(
                        f"webhook {webhook_id} has no delivery {delivery_id}",
                        code="delivery_not_found",
                    )
                raise Conflict(f"delivery {delivery_id} is not finished", code="not_finished")
            await self._audit(
                conn, principal, project_id, "webhook_delivery.redeliver", str(delivery_id)
            )
        await self.host.enqueue_deliveries([delivery_id])
        return describe_delivery(row)

    # -- workflows --------------------------------------------------------------------

    async def _validated(self, project_id: str, spec: WorkflowSpec) -> dict[str, Any]:
        catalog = await self.tessera.catalog.get(project_id)
        collection = catalog.live_collections.get(spec.trigger.collection)
        if collection is None:
            raise ValidationFailed(
                f"collection {spec.trigger.collection!r} not found",
                code="collection_not_found",
                field="trigger.collection",
            )
        problems: list[ErrorItem] = []
        if spec.trigger.condition:
            try:
                bind_condition(spec.trigger.condition, collection, self.tessera.operators)
            except ExpressionError as error:
                problems.append(ErrorItem("invalid_expression", str(error), "trigger.condition"))
        for index, action in enumerate(spec.actions):
            action_class = self.tessera.workflow_actions.get(action.type)
            if action_class is None:
                available = ", ".join(sorted(self.tessera.workflow_actions))
                problems.append(
                    ErrorItem("unknown_action", f"available: {available}", f"actions[{index}].type")
                )
                continue
            where = f"actions[{index}].options"
            try:
                step = action_class(action_class.Options.model_validate(action.options))
            except ValidationError as error:
                for problem in error.errors():
                    location = ".".join(str(part) for part in problem["loc"])
                    problems.append(
                        ErrorItem("invalid_option", problem["msg"], f"{where}.{location}")
                    )
                continue
            try:
                await step.check(self.tessera, project_id)
            except ValidationFailed as error:
                problems += [
                    ErrorItem(
                        item.code, item.message, f"{where}.{item.field}" if item.field else where
                    )
                    for item in error.items
                ]
        if problems:
            raise ValidationFailed(items=problems)
        trigger = spec.trigger.model_dump()
        trigger["collection_id"] = collection.id
        return {
            "name": spec.name,
            "trigger": trigger,
            "actions": [action.model_dump() for action in spec.actions],
            "active": spec.active,
        }

    async def create_workflow(
        self, project_id: str, spec: WorkflowSpec, principal: Principal
    ) -> dict[str, Any]:
        await self._checked(project_id, principal)
        values = await self._validated(project_id, spec)
        async with self.tessera.db.engine.begin() as conn:
            row = (
                await conn.execute(
                    workflows.insert()
                    .values(project_id=project_id, created_by=principal.actor(), **values)
                    .returning(*workflows.c)
                )
            ).one()
            described = describe_workflow(row)
            await self._audit(
                conn, principal, project_id, "workflow.create", str(row.id), after=described
            )
        return described

    async def list_workflows(self, project_id: str, principal: Principal) -> list[dict[str, Any]]:
        await self._checked(project_id, principal)
        async with self.tessera.db.engine.connect() as conn:
            rows = (
                await conn.execute(
                    sa.select(workflows)
                    .where(workflows.c.project_id == project_id)
                    .order_by(workflows.c.id)
                )
            ).all()
        return [describe_workflow(row) for row in rows]

    async def get_workflow(
        self, project_id: str, workflow_id: int, principal: Principal
    ) -> dict[str, Any]:
        await self._checked(project_id, principal)
        return describe_workflow(await self._one(workflows, project_id, workflow_id, "workflow"))

    async def update_workflow(
        self, project_id: str, workflow_id: int, spec: WorkflowUpdate, principal: Principal
    ) -> dict[str, Any]:
        await self._checked(project_id, principal)
        before = await self._one(workflows, project_id, workflow_id, "workflow")
        values = spec.model_dump(exclude_none=True)
        if not values:
            return describe_workflow(before)
        async with self.tessera.db.engine.begin() as conn:
            row = (
                await conn.execute(
                    workflows.update()
                    .where(workflows.c.id == workflow_id)
                    .values(**values)
                    .returning(*workflows.c)
                )
            ).one()
            await self._audit(
                conn,
                principal,
                project_id,
                "workflow.update",
                str(workflow_id),
                before=describe_workflow(before),
                after=describe_workflow(row),
            )
        return describe_workflow(row)

    async def delete_workflow(
        self, project_id: str, workflow_id: int, principal: Principal
    ) -> None:
        await self._checked(project_id, principal)
        before = await self._one(workflows, project_id, workflow_id, "workflow")
        async with self.tessera.db.engine.begin() as conn:
            await conn.execute(workflows.delete().where(workflows.c.id == workflow_id))
            await self._audit(
                conn,
                principal,
                project_id,
                "workflow.delete",
                str(workflow_id),
                before=describe_workflow(before),
            )

    async def runs(
        self,
        project_id: str,
        workflow_id: int,
        principal: Principal,
        status: RunStatus | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> dict[str, Any]:
        await self._checked(project_id, principal)
        await self._one(workflows, project_id, workflow_id, "workflow")
        statement = sa.select(workflow_runs).where(workflow_runs.c.workflow_id == workflow_id)
        if status:
            statement = statement.where(workflow_runs.c.status == status)
        return await newest_first(
            self.tessera,
            statement,
            workflow_runs,
            scope=f"runs:{workflow_id}",
            limit=limit,
            cursor=cursor,
            describe=describe_run,
        )
