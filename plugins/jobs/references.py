"""What webhooks and workflows name, kept true through schema changes.

Two reference holders asked by the DDL engine inside every schema op's transaction:
webhook patterns name collections (``orders.insert``); a workflow names its trigger
collection, the fields its condition compares, and whatever its actions' options name
(each action type says which, see :meth:`kernel.WorkflowAction.names`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa

from kernel import Dependent, ReferenceContext, ReferenceHolder, SchemaChange
from kernel.expr import ExpressionError, field_names, parse, rename_field, to_text
from plugins.jobs.matching import renamed_patterns
from plugins.jobs.tables import webhooks, workflows


class WebhookReferences(ReferenceHolder):
    """Webhook patterns naming a collection follow its renames and are dependents of its
    drop (warned: the webhook goes quiet) and purge (refused)."""

    name = "webhook"

    async def dependents(self, context: ReferenceContext, change: SchemaChange) -> list[Dependent]:
        if change.field is not None:
            return []
        rows = await context.conn.execute(
            sa.select(webhooks.c.id, webhooks.c.url, webhooks.c.events).where(
                webhooks.c.project_id == context.project_id
            )
        )
        return [
            Dependent("webhook", f"{row.id} ({row.url})", f"pattern {pattern}")
            for row in rows
            for pattern in row.events
            if pattern.partition(".")[0] == change.collection
        ]

    async def rewrite(self, context: ReferenceContext, change: SchemaChange) -> list[Dependent]:
        if change.field is not None:
            return []
        rows = await context.conn.execute(
            sa.select(webhooks.c.id, webhooks.c.url, webhooks.c.events)
            .where(webhooks.c.project_id == context.project_id)
            .with_for_update()
        )
        rewritten = []
        for row in rows.all():
            events = renamed_patterns(row.events, change.collection, change.new_name or "")
            if events != row.events:
                await context.conn.execute(
                    webhooks.update().where(webhooks.c.id == row.id).values(events=events)
                )
                rewritten.append(
                    Dependent("webhook", f"{row.id} ({row.url})", f"patterns {', '.join(events)}")
                )
        return rewritten


class WorkflowReferences(ReferenceHolder):
    """A workflow names its trigger collection, the fields of its condition and what its
    actions' options name. Renames rewrite all of them; drops warn, purges refuse."""

    name = "workflow"

    async def dependents(self, context: ReferenceContext, change: SchemaChange) -> list[Dependent]:
        subject = (change.collection, change.field)
        return [
            Dependent("workflow", _describe(row), detail)
            for row in await self._rows(context, lock=False)
            for named, detail in self._names(row)
            if named == subject
        ]

    async def rewrite(self, context: ReferenceContext, change: SchemaChange) -> list[Dependent]:
        rewritten = []
        for row in await self._rows(context, lock=True):
            trigger, actions = self._renamed(row, change)
            if trigger != row.trigger or actions != row.actions:
                await context.conn.execute(
                    workflows.update()
                    .where(workflows.c.id == row.id)
                    .values(trigger=trigger, actions=actions)
                )
                rewritten.append(Dependent("workflow", _describe(row), change.describe()))
        return rewritten

    async def _rows(self, context: ReferenceContext, *, lock: bool) -> list[Any]:
        query = sa.select(
            workflows.c.id, workflows.c.name, workflows.c.trigger, workflows.c.actions
        )
        query = query.where(workflows.c.project_id == context.project_id).order_by(workflows.c.id)
        if lock:
            query = query.with_for_update()
        return list((await context.conn.execute(query)).all())

    def _names(self, row: Any) -> Iterator[tuple[tuple[str, str | None], str]]:
        """Every ``((collection, field), how)`` the workflow names."""
        trigger = row.trigger["collection"]
        yield (trigger, None), "triggered by it"
        for field in _condition_fields(row.trigger.get("condition")):
            yield (trigger, field), f"condition names {field}"
        for position, action in enumerate(row.actions, start=1):
            action_class = self.tessera.workflow_actions.get(action["type"])
            if action_class is None:
                continue
            for named in action_class.names(action["options"], trigger):
                yield named, f"action {position} ({action['type']}) names it"

    def _renamed(self, row: Any, change: SchemaChange) -> tuple[dict[str, Any], list[Any]]:
        trigger = dict(row.trigger)
        collection = trigger["collection"]
        actions = []
        for action in row.actions:
            action_class = self.tessera.workflow_actions.get(action["type"])
            if action_class is None:
                actions.append(action)
                continue
            options = action_class.renamed(action["options"], collection, change)
            actions.append({**action, "options": options})
        if collection == change.collection:
            if change.field is None:
                trigger["collection"] = change.new_name
            elif trigger.get("condition") and change.field in _condition_fields(
                trigger["condition"]
            ):
                node = rename_field(
                    parse(trigger["condition"]), change.field, change.new_name or ""
                )
                trigger["condition"] = to_text(node)
        return trigger, actions


def _condition_fields(condition: str | None) -> set[str]:
    if not condition:
        return set()
    try:
        return field_names(parse(condition))
    except ExpressionError:
        return set()


def _describe(row: Any) -> str:
    return f"{row.id} {row.name!r}"
