"""Which events a webhook's patterns select, across collection renames (plugins/jobs)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from kernel.events.reader import Event
from plugins.jobs.matching import renamed_patterns, webhook_wants

ORDERS_ID, OTHER_ID = 7, 8
#: The catalog after ``orders`` was renamed ``purchases`` (the alias ``orders`` still lives).
NAMES = {"purchases": ORDERS_ID, "orders": ORDERS_ID, "other": OTHER_ID}


def event(collection: str, collection_id: int, kind: str = "insert") -> Event:
    return Event(
        id=1,
        xact_id=1,
        project_id="p",
        collection_id=collection_id,
        collection=collection,
        record_id=1,
        type=kind,
        changed_fields=[],
        row=None,
        meta={},
        created_at=datetime.now(UTC),
    )


@pytest.mark.parametrize(
    ("patterns", "wanted", "expected"),
    [
        (["*"], event("other", OTHER_ID, "delete"), True),
        (["*.delete"], event("other", OTHER_ID, "delete"), True),
        (["*.delete"], event("other", OTHER_ID, "insert"), False),
        (["orders.*"], event("other", OTHER_ID), False),
        (["orders.update"], event("orders", ORDERS_ID, "insert"), False),
        # Recorded before the rename, patterns already rewritten: the new name resolves to it.
        (["purchases.insert"], event("orders", ORDERS_ID), True),
        # Recorded after the rename, patterns not rewritten yet: the alias resolves to it.
        (["orders.*"], event("purchases", ORDERS_ID), True),
        # A collection no longer in the catalog is still matched by the name it had.
        (["gone.insert"], event("gone", 99), True),
        (["gone.insert"], event("other", OTHER_ID), False),
    ],
)
def test_patterns_match_by_name_or_by_the_collection_a_name_resolves_to(
    patterns: list[str], wanted: Event, expected: bool
) -> None:
    assert webhook_wants(patterns, wanted, NAMES.get) is expected


def test_renamed_patterns_rewrite_only_the_renamed_collection() -> None:
    patterns = ["*", "*.delete", "orders.*", "orders.insert", "orders_archive.insert"]
    assert renamed_patterns(patterns, "orders", "purchases") == [
        "*",
        "*.delete",
        "orders_archive.insert",
        "purchases.*",
        "purchases.insert",
    ]
    assert renamed_patterns(["orders.insert", "purchases.insert"], "orders", "purchases") == [
        "purchases.insert"
    ]
