"""Which webhooks and workflows an event concerns."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kernel.events.reader import Event

#: A collection name → the id of the collection it names (current name or live alias), or
#: None when it names none.
CollectionIds = Callable[[str], int | None]


def event_name(event: Event) -> str:
    """``<collection>.<type>``, e.g. ``orders.insert``: what webhooks subscribe to."""
    return f"{event.collection}.{event.type}"


def webhook_wants(patterns: list[str], event: Event, collection_id: CollectionIds) -> bool:
    """Patterns: ``orders.insert``, ``orders.*``, ``*.delete``, ``*``.

    A pattern's collection matches the event's collection by name or by identity: a name
    that now resolves to the event's collection (its new name after a rename, or its old
    one while the alias lives) matches too, so a rename never drops a delivery, whether the
    event was recorded before it or the webhook's patterns are rewritten after it."""
    for pattern in patterns:
        if pattern == "*":
            return True
        collection, _, kind = pattern.partition(".")
        if kind in ("*", event.type) and (
            collection in ("*", event.collection)
            or collection_id(collection) == event.collection_id
        ):
            return True
    return False


def pattern_collection(pattern: str) -> str | None:
    """The collection a pattern names (``orders`` in ``orders.insert``), or None for a
    pattern about every collection (``*``, ``*.delete``)."""
    collection, _, _ = pattern.partition(".")
    return None if collection == "*" else collection


def renamed_patterns(patterns: list[str], old: str, new: str) -> list[str]:
    """``patterns`` with collection ``old`` called ``new`` (sorted, without duplicates, as
    webhooks store them)."""
    renamed = []
    for pattern in patterns:
        collection, dot, kind = pattern.partition(".")
        renamed.append(f"{new}{dot}{kind}" if dot and collection == old else pattern)
    return sorted(set(renamed))


def workflow_wants(trigger: dict[str, Any], event: Event) -> bool:
    return trigger.get("collection_id") == event.collection_id and event.type in trigger.get(
        "events", []
    )


def payload(event: Event) -> dict[str, Any]:
    """What a webhook receives about ``event`` (delivery id and send time are added when
    it is sent)."""
    return {
        "event_id": event.id,
        "type": event_name(event),
        "project": event.project_id,
        "collection": event.collection,
        "record_id": event.record_id,
        "changed_fields": event.changed_fields,
        "record": event.row,
        "occurred_at": event.created_at.isoformat(),
    }
