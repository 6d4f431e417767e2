"""The engine's side of :mod:`kernel.references`: ask every holder, decide, report.

``references(...)`` runs inside the op's transaction (read only in a preview). For each
change the op declares it collects the dependents every holder reports; ``refusal`` turns
them into the 409 an apply raises (a purge with any dependent, a drop with a blocking
one); ``rewrite`` has every holder rewrite its references for each rename.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kernel.errors import Conflict
from kernel.references import Dependent, ReferenceContext, ReferenceHolder, SchemaChange


@dataclass(frozen=True, slots=True)
class Found:
    """A dependent of one change."""

    change: SchemaChange
    dependent: Dependent

    def describe(self) -> dict[str, Any]:
        return {"change": self.change.describe(), **self.dependent.describe()}


async def references(
    holders: Sequence[ReferenceHolder], context: ReferenceContext, changes: list[SchemaChange]
) -> list[Found]:
    """Every holder's dependents of every change, in holder then change order."""
    found: list[Found] = []
    for change in changes:
        for holder in holders:
            for dependent in await holder.dependents(context, change):
                found.append(Found(change, dependent))
    return found


def warnings(found: list[Found]) -> list[str]:
    """One line per dependent for the preview and the op's record."""
    lines = []
    for item in found:
        change, dependent = item.change, item.dependent
        if change.kind == "rename":
            lines.append(f"{dependent} is rewritten to the new name")
        elif _refuses(item):
            lines.append(f"{dependent} depends on it: remove it first, or this is refused")
        else:
            lines.append(f"{dependent} depends on it")
    return lines


def refusal(found: list[Found]) -> Conflict | None:
    """The 409 an apply raises when a dependent forbids the change, else ``None``.

    Codes: ``has_dependents`` for a purge, ``field_in_use`` / ``collection_in_use`` for a
    drop; the message lists every dependent that forbids it."""
    refusing = [item for item in found if _refuses(item)]
    if not refusing:
        return None
    change = refusing[0].change
    subject = change.field or change.collection
    listed = "; ".join(str(item.dependent) for item in refusing)
    if change.kind == "purge":
        return Conflict(
            f"{subject!r} cannot be purged while these depend on it: {listed}",
            code="has_dependents",
            field="field" if change.field else "collection",
        )
    what = "field" if change.field else "collection"
    return Conflict(
        f"{subject!r} is used by: {listed}; change them first",
        code=f"{what}_in_use",
        field=what,
    )


async def rewrite(
    holders: Sequence[ReferenceHolder], context: ReferenceContext, changes: list[SchemaChange]
) -> list[Found]:
    """Every holder rewrites its references for every rename; what was rewritten."""
    rewritten: list[Found] = []
    for change in changes:
        if change.kind != "rename":
            continue
        for holder in holders:
            for dependent in await holder.rewrite(context, change):
                rewritten.append(Found(change, dependent))
    return rewritten


def _refuses(item: Found) -> bool:
    kind = item.change.kind
    return kind == "purge" or (kind == "drop" and item.dependent.blocking)
