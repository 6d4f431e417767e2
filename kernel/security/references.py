"""The kernel's own stored references: policy rules name fields, API keys name collections.

Both are :class:`kernel.references.ReferenceHolder` s asked by every schema op like any
plugin's holder — the rename operations special-case neither.
"""

from __future__ import annotations

import sqlalchemy as sa

from kernel.catalog.model import CollectionDef
from kernel.db.schema import api_keys
from kernel.expr import field_names, parse, rename_field, to_text
from kernel.references import Dependent, ReferenceContext, ReferenceHolder, SchemaChange


class PolicyReferences(ReferenceHolder):
    """A collection's policy rules name its fields. A policy naming a dropped field is a
    blocking dependent (every request of that action would fail); renames rewrite it."""

    name = "policy"

    async def dependents(self, context: ReferenceContext, change: SchemaChange) -> list[Dependent]:
        collection = context.catalog.collections.get(change.collection)
        if change.field is None or collection is None:
            return []  # a collection's own policies come and go with it
        return [
            Dependent(
                "policy",
                f"{action} on {collection.name}",
                f"rule names {change.field}",
                blocking=True,
            )
            for action in _actions_naming(collection, change.field)
        ]

    async def rewrite(self, context: ReferenceContext, change: SchemaChange) -> list[Dependent]:
        collection = context.catalog.collections.get(change.collection)
        if change.field is None or collection is None or context.writer is None:
            return []
        actions = _actions_naming(collection, change.field)
        if not actions:
            return []
        rules = {
            action: to_text(rename_field(parse(rule), change.field, change.new_name or ""))
            if action in actions and rule
            else rule
            for action, rule in collection.policies.items()
        }
        await context.writer.set_policies(collection.id, rules)
        return [
            Dependent("policy", f"{action} on {collection.name}", f"rule names {change.field}")
            for action in actions
        ]


def _actions_naming(collection: CollectionDef, field: str) -> list[str]:
    return sorted(
        action
        for action, rule in collection.policies.items()
        if rule and field in field_names(parse(rule))
    )


class ApiKeyReferences(ReferenceHolder):
    """Keys restricted to collections name them: they follow a renamed collection and
    are listed as dependents of a dropped or purged one."""

    name = "api_key"

    async def dependents(self, context: ReferenceContext, change: SchemaChange) -> list[Dependent]:
        if change.field is not None:
            return []
        rows = await context.conn.execute(
            sa.select(api_keys.c.id, api_keys.c.name).where(
                api_keys.c.project_id == context.project_id,
                api_keys.c.revoked_at.is_(None),
                sa.literal(change.collection) == sa.any_(api_keys.c.collections),
            )
        )
        return [
            Dependent("api_key", f"{row.id} {row.name!r}", f"restricted to {change.collection}")
            for row in rows
        ]

    async def rewrite(self, context: ReferenceContext, change: SchemaChange) -> list[Dependent]:
        if change.field is not None or context.writer is None:
            return []
        found = await self.dependents(context, change)
        if found:
            await context.writer.rename_in_api_keys(change.collection, change.new_name or "")
        return found
