"""``change_relation``: point a relation at another collection, or change its referential
action or display field, with a preview of the foreign key it replaces."""

from __future__ import annotations

from functools import partial
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from kernel import (
    CatalogWriter,
    Conflict,
    DdlOperation,
    FieldPlacement,
    OnDelete,
    Plan,
    SchemaInspector,
    Step,
    ValidationFailed,
)
from plugins.field_types.relation.field_type import RelationOptions, RelationType, drop_foreign_key
from plugins.field_types.relation.references import TYPE_NAME


class ChangeRelationArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    collection: str
    field: str
    target: str | None = None
    on_delete: OnDelete | None = None
    display_field: str | None = None


class ChangeRelation(DdlOperation):
    """Replace a relation's foreign key: a new target, a new ``on_delete``, or both (and
    the display field). Existing values must be ids of the new target, or the op fails
    and nothing changes."""

    name = "change_relation"
    label = "Change relation"
    Args = ChangeRelationArgs

    @classmethod
    def lock_names(cls, args: BaseModel) -> list[str]:
        return [name for name in (args.collection, args.target) if name]

    def plan(self) -> Plan:
        args, context = self.args, self.context
        self.collection = context.collection(args.collection)
        self.field = context.field(self.collection, args.field)
        if self.field.type_name != TYPE_NAME:
            raise Conflict(
                f"{args.field!r} is not a relation field", code="not_a_relation", field="field"
            )
        changed = args.model_dump(exclude_none=True, include={"target", "on_delete"})
        display = {"display_field": args.display_field} if args.display_field else {}
        if not changed and not display:
            raise ValidationFailed(
                "give target, on_delete or display_field", code="nothing_to_change"
            )
        try:
            options = RelationOptions.model_validate({**self.field.options, **changed, **display})
        except ValidationError as error:
            raise ValidationFailed(str(error.errors()[0]["msg"]), code="invalid_option") from None
        self.options = options.model_dump(mode="json")
        relation = RelationType(options)
        table, column = self.collection.table, self.field.column
        placement = FieldPlacement(
            context.catalog, self.collection.name, self.field.name, self.field.required, "args"
        )
        target_table = relation.target_table(table, placement)
        steps: list[Step] = []
        warnings = []
        if changed:
            steps = [
                Step(
                    f"drop the foreign key on {column}",
                    partial(drop_foreign_key, context.schema, table, column),
                ),
                relation.foreign_key_step(context.schema, table, column, target_table),
            ]
        if "target" in changed:
            warnings.append(
                f"every {self.field.name} value must be an id of {options.target!r}, or this "
                "fails and nothing changes"
            )
        return Plan(steps=steps, warnings=warnings)

    async def impact(self, inspector: SchemaInspector) -> dict[str, Any]:
        return await inspector.impact(self.collection, rewrite=False)

    def target(self) -> tuple[str, str]:
        return "field", f"{self.args.collection}.{self.args.field}"

    def before(self) -> Any:
        return {"options": dict(self.field.options)}

    async def write_catalog(self, writer: CatalogWriter) -> dict[str, Any]:
        await writer.update_field(self.field.id, options=self.options)
        return {
            "collection": self.collection.name,
            "field": self.field.name,
            "options": self.options,
        }
