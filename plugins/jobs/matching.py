"""Which webhooks and workflows an event concerns."""

from __future__ import annotations

import fnmatch
from typing import Any

from kernel.events.reader import Event


def event_name(event: Event) -> str:
    """``<collection>.<type>``, e.g. ``orders.insert``: what webhooks subscribe to."""
    return f"{event.collection}.{event.type}"


def webhook_wants(patterns: list[str], event: Event) -> bool:
    """Patterns: ``orders.insert``, ``orders.*``, ``*.delete``, ``*``."""
    name = event_name(event)
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


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
