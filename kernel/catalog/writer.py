"""Catalog writes for schema operations, inside the DDL engine's transaction.

Operations (core and plugin alike) change the catalog only through this class, so every
write lands in the same transaction as the DDL it describes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from kernel.catalog.model import RuleDef
from kernel.catalog.specs import ResolvedField
from kernel.db.schema import (
    aliases,
    api_keys,
    collections,
    field_rules,
    fields,
    policies,
    record_rules,
)


class CatalogWriter:
    """Writes catalog rows on ``conn`` (the op's transaction); never commits."""

    def __init__(self, conn: AsyncConnection, project_id: str, now: datetime) -> None:
        self.conn = conn
        self.project_id = project_id
        self.now = now
        #: Whether API keys' collection restrictions changed (cached keys are then stale).
        self.keys_changed = False

    async def insert_collection(self, name: str, display_name: str, table: str) -> int:
        return (
            await self.conn.execute(
                collections.insert()
                .values(
                    project_id=self.project_id,
                    name=name,
                    display_name=display_name,
                    sql_table_name=table,
                )
                .returning(collections.c.id)
            )
        ).scalar_one()

    async def update_collection(self, collection_id: int, **values: Any) -> None:
        await self.conn.execute(
            collections.update()
            .where(collections.c.id == collection_id)
            .values(updated_at=self.now, **values)
        )

    async def insert_field(self, collection_id: int, field: ResolvedField, position: int) -> int:
        """The field's row and its rules' rows; returns the field's id."""
        field_id = (
            await self.conn.execute(
                fields.insert()
                .values(
                    collection_id=collection_id,
                    name=field.name,
                    display_name=field.display_name,
                    type=field.type_name,
                    sql_column_name=field.column,
                    options=field.options,
                    required=field.required,
                    is_unique=field.unique,
                    has_default=field.has_default,
                    default=field.default,
                    position=position,
                )
                .returning(fields.c.id)
            )
        ).scalar_one()
        await self.set_field_rules(field_id, [rule.definition() for rule in field.rules])
        return field_id

    async def set_field_rules(self, field_id: int, rules: list[RuleDef]) -> None:
        """Replace the field's rules with ``rules``, in order."""
        await self.conn.execute(field_rules.delete().where(field_rules.c.field_id == field_id))
        if rules:
            await self.conn.execute(
                field_rules.insert(),
                [
                    {
                        "field_id": field_id,
                        "position": position,
                        "type": rule.type_name,
                        "value": rule.value,
                        "constraint_name": rule.constraint,
                    }
                    for position, rule in enumerate(rules)
                ],
            )

    async def insert_record_rule(
        self, collection_id: int, name: str, definition: dict[str, Any]
    ) -> int:
        return (
            await self.conn.execute(
                record_rules.insert()
                .values(collection_id=collection_id, name=name, definition=definition)
                .returning(record_rules.c.id)
            )
        ).scalar_one()

    async def update_record_rule(self, rule_id: int, definition: dict[str, Any]) -> None:
        await self.conn.execute(
            record_rules.update().where(record_rules.c.id == rule_id).values(definition=definition)
        )

    async def delete_record_rule(self, rule_id: int) -> None:
        await self.conn.execute(record_rules.delete().where(record_rules.c.id == rule_id))

    async def update_field(self, field_id: int, **values: Any) -> None:
        await self.conn.execute(
            fields.update().where(fields.c.id == field_id).values(updated_at=self.now, **values)
        )

    async def delete_field(self, field_id: int) -> None:
        await self.conn.execute(fields.delete().where(fields.c.id == field_id))

    async def set_policies(self, collection_id: int, rules: dict[str, str | None]) -> None:
        """Replace the collection's policies with ``rules`` (action → rule)."""
        await self.conn.execute(policies.delete().where(policies.c.collection_id == collection_id))
        if rules:
            await self.conn.execute(
                policies.insert(),
                [
                    {"collection_id": collection_id, "action": action, "rule": rule}
                    for action, rule in rules.items()
                ],
            )

    async def insert_alias(
        self,
        *,
        kind: str,
        old_name: str,
        collection_id: int,
        field_id: int | None,
        expires_at: datetime,
    ) -> int:
        return (
            await self.conn.execute(
                aliases.insert()
                .values(
                    project_id=self.project_id,
                    kind=kind,
                    old_name=old_name,
                    collection_id=collection_id,
                    field_id=field_id,
                    expires_at=expires_at,
                )
                .returning(aliases.c.id)
            )
        ).scalar_one()

    async def retire_alias(self, alias_id: int) -> None:
        await self.conn.execute(
            aliases.update().where(aliases.c.id == alias_id).values(retired_at=self.now)
        )

    async def retire_aliases_named(
        self, kind: str, old_name: str, collection_id: int | None
    ) -> None:
        """Retire live aliases with this old name (a new object now owns the name)."""
        condition = sa.and_(
            aliases.c.project_id == self.project_id,
            aliases.c.kind == kind,
            aliases.c.old_name == old_name,
            aliases.c.retired_at.is_(None),
        )
        if collection_id is not None:
            condition = sa.and_(condition, aliases.c.collection_id == collection_id)
        await self.conn.execute(aliases.update().where(condition).values(retired_at=self.now))

    async def delete_collection(self, collection_id: int) -> None:
        """Remove a collection's catalog rows (fields, policies and aliases cascade)."""
        await self.conn.execute(collections.delete().where(collections.c.id == collection_id))

    async def repoint_field_aliases(self, from_field_id: int, to_field_id: int) -> None:
        """Make old names of one field resolve to another (after a column swap)."""
        await self.conn.execute(
            aliases.update()
            .where(aliases.c.field_id == from_field_id, aliases.c.retired_at.is_(None))
            .values(field_id=to_field_id)
        )

    async def rename_in_api_keys(self, old_name: str, new_name: str) -> None:
        """Keys restricted to a renamed collection follow it to its new name."""
        await self.conn.execute(
            api_keys.update()
            .where(
                api_keys.c.project_id == self.project_id,
                sa.literal(old_name) == sa.any_(api_keys.c.collections),
            )
            .values(collections=sa.func.array_replace(api_keys.c.collections, old_name, new_name))
        )
        self.keys_changed = True
