"""The built-in workflow actions and the context every action runs with.

Actions that write records do it as the workflow (an admin-level principal named after it)
and mark the events they cause with the run's depth + 1, so a workflow that triggers itself
is cut off at ``workflow_max_depth``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from kernel import (
    KernelSurface,
    NotFound,
    Principal,
    SchemaChange,
    ValidationFailed,
    WorkflowAction,
)


class ValueSource(BaseModel):
    """Where a written value comes from: a literal, or a field of the triggering record."""

    model_config = ConfigDict(extra="forbid")

    value: Any = None
    from_field: str | None = Field(default=None, alias="from")

    @model_validator(mode="after")
    def _one_source(self) -> ValueSource:
        if "value" in self.model_fields_set and self.from_field is not None:
            raise ValueError("give either value or from, not both")
        return self

    def resolve(self, record: dict[str, Any] | None) -> Any:
        if self.from_field is not None:
            return (record or {}).get(self.from_field)
        return self.value


@dataclass
class WorkflowContext:
    """What an action may use: the triggering event, the kernel, and writes that carry the
    run's depth."""

    tessera: KernelSurface
    host: Any
    project_id: str
    workflow_id: int
    run_id: int
    depth: int
    event: dict[str, Any]

    @property
    def record(self) -> dict[str, Any] | None:
        return self.event.get("record")

    @property
    def principal(self) -> Principal:
        return Principal(kind="admin", name=f"workflow {self.workflow_id}", role="workflow")

    @property
    def meta(self) -> dict[str, Any]:
        return {"depth": self.depth + 1, "workflow_run": self.run_id}

    async def create_record(self, collection: str, values: dict[str, Any]) -> dict[str, Any]:
        outcome = await self.tessera.records.create(
            self.project_id, collection, values, self.principal, meta=self.meta
        )
        return outcome.data

    async def update_record(
        self, collection: str, record_id: int, values: dict[str, Any]
    ) -> dict[str, Any]:
        outcome = await self.tessera.records.update(
            self.project_id, collection, record_id, values, self.principal, meta=self.meta
        )
        return outcome.data


class Values(BaseModel):
    model_config = ConfigDict(extra="forbid")

    values: dict[str, ValueSource] = Field(min_length=1)


def values_names(values: dict[str, Any], target: str, trigger: str) -> list[tuple[str, str]]:
    """Fields stored ``values`` name: each key (a field of ``target``) and each ``from``
    (a field of the triggering record)."""
    names = [(target, key) for key in values]
    names.extend((trigger, source["from"]) for source in values.values() if _source_field(source))
    return names


def renamed_values(
    values: dict[str, Any], target: str, trigger: str, change: SchemaChange
) -> dict[str, Any]:
    """Stored ``values`` with the field rename ``change`` applied to keys and ``from``s."""
    if change.field is None:
        return values
    renamed = {}
    for key, source in values.items():
        if change.collection == target and key == change.field:
            key = change.new_name
        if change.collection == trigger and _source_field(source) == change.field:
            source = {**source, "from": change.new_name}
        renamed[key] = source
    return renamed


def _source_field(source: Any) -> str | None:
    return source.get("from") if isinstance(source, dict) else None


class CreateRecordOptions(Values):
    collection: str


class CreateRecord(WorkflowAction):
    name = "create_record"
    label = "Create a record"
    Options = CreateRecordOptions

    async def run(self, context: WorkflowContext) -> dict[str, Any]:
        values = {
            name: source.resolve(context.record) for name, source in self.options.values.items()
        }
        created = await context.create_record(self.options.collection, values)
        return {"collection": self.options.collection, "id": created["id"]}

    @classmethod
    def names(cls, options: dict[str, Any], trigger: str) -> list[tuple[str, str | None]]:
        target = options["collection"]
        return [(target, None), *values_names(options["values"], target, trigger)]

    @classmethod
    def renamed(cls, options: dict[str, Any], trigger: str, change: SchemaChange) -> dict[str, Any]:
        target = options["collection"]
        values = renamed_values(options["values"], target, trigger, change)
        if change.field is None and target == change.collection:
            target = change.new_name
        return {**options, "collection": target, "values": values}


class UpdateRecord(WorkflowAction):
    name = "update_record"
    label = "Update the triggering record"
    Options = Values

    async def run(self, context: WorkflowContext) -> dict[str, Any]:
        if context.event.get("type", "").endswith(".delete"):
            raise ValidationFailed("a deleted record cannot be updated", code="record_deleted")
        values = {
            name: source.resolve(context.record) for name, source in self.options.values.items()
        }
        await context.update_record(context.event["collection"], context.event["record_id"], values)
        return {"updated": sorted(values)}

    @classmethod
    def names(cls, options: dict[str, Any], trigger: str) -> list[tuple[str, str | None]]:
        return list(values_names(options["values"], trigger, trigger))

    @classmethod
    def renamed(cls, options: dict[str, Any], trigger: str, change: SchemaChange) -> dict[str, Any]:
        return {**options, "values": renamed_values(options["values"], trigger, trigger, change)}


class SetFieldOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    field: str
    value: Any = None
    from_field: str | None = Field(default=None, alias="from")


#: Keys of stored set_field options that hold a field name ("from" has an alternate name).
_SET_FIELD_NAMES = ("field", "from", "from_field")


class SetField(WorkflowAction):
    name = "set_field"
    label = "Set a field of the triggering record"
    Options = SetFieldOptions

    async def run(self, context: WorkflowContext) -> dict[str, Any]:
        source = ValueSource.model_validate(
            {"from": self.options.from_field}
            if self.options.from_field is not None
            else {"value": self.options.value}
        )
        value = source.resolve(context.record)
        await context.update_record(
            context.event["collection"], context.event["record_id"], {self.options.field: value}
        )
        return {"field": self.options.field, "value": value}

    @classmethod
    def names(cls, options: dict[str, Any], trigger: str) -> list[tuple[str, str | None]]:
        return [(trigger, options[key]) for key in _SET_FIELD_NAMES if options.get(key)]

    @classmethod
    def renamed(cls, options: dict[str, Any], trigger: str, change: SchemaChange) -> dict[str, Any]:
        if change.field is None or change.collection != trigger:
            return options
        return {
            key: change.new_name if key in _SET_FIELD_NAMES and value == change.field else value
            for key, value in options.items()
        }


class SendWebhookOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    webhook_id: int


class SendWebhook(WorkflowAction):
    """Deliver the triggering event to one of the project's webhooks: signed, retried and
    logged like any delivery (once per event and webhook)."""

    name = "send_webhook"
    label = "Send to a webhook"
    Options = SendWebhookOptions

    async def check(self, tessera: Any, project_id: str) -> None:
        async with tessera.db.pool.acquire() as conn:
            if not await self._exists(conn, project_id):
                raise ValidationFailed(
                    f"the project has no webhook {self.options.webhook_id}",
                    code="webhook_not_found",
                    field="webhook_id",
                )

    async def _exists(self, conn: Any, project_id: str) -> bool:
        """Whether the webhook is one of ``project_id``'s (an id of another project's
        webhook is refused like an unknown one)."""
        return bool(
            await conn.fetchval(
                "SELECT 1 FROM tessera.webhooks WHERE id = $1 AND project_id = $2",
                self.options.webhook_id,
                project_id,
            )
        )

    async def run(self, context: WorkflowContext) -> dict[str, Any]:
        async with context.tessera.db.pool.acquire() as conn:
            if not await self._exists(conn, context.project_id):
                raise NotFound(
                    f"webhook {self.options.webhook_id} not found", code="webhook_not_found"
                )
            payload = {key: value for key, value in context.event.items() if key != "meta"}
            delivery_id = await conn.fetchval(
                "INSERT INTO tessera.webhook_deliveries"
                " (webhook_id, project_id, event_id, event_type, payload)"
                " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (webhook_id, event_id) DO NOTHING"
                " RETURNING id",
                self.options.webhook_id,
                context.project_id,
                context.event["event_id"],
                context.event.get("type", ""),
                payload,
            )
        if delivery_id is not None:
            await context.host.enqueue_deliveries([delivery_id])
        return {"webhook_id": self.options.webhook_id, "delivery_id": delivery_id}


BUILT_IN_ACTIONS: list[type[WorkflowAction]] = [SendWebhook, CreateRecord, UpdateRecord, SetField]
