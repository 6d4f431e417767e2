"""What a subscriber may see: collections checked once when it subscribes, row rules
evaluated in Python on each event's row image.

An event reaches a subscriber when the record would be in their list and readable by them:
the ``realtime`` scope, a key's collections and both the ``list`` and ``read`` policies are
checked as the records API checks them (``RecordService.target``), and the rules those
policies leave are evaluated on the row the event carries.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kernel.catalog.model import CollectionDef, ProjectCatalog
from kernel.errors import BadRequest, Forbidden, Unauthorized
from kernel.events.reader import Event
from kernel.expr import Bound, evaluate
from kernel.records.service import RecordService
from kernel.security.principal import Principal

SCOPE = "realtime"
#: Seeing an event means seeing the record in a list and reading it.
ACTIONS = ("list", "read")


@dataclass(frozen=True, slots=True)
class Grant:
    """One collection a subscriber watches.

    ``name`` is the name the subscriber asked for (an old name of a renamed collection
    included); its events carry that name. Every rule in ``rules`` must hold on an event's
    row (no rules: every event). Subscribers with equal ``group`` get the same answer on
    every row: same collection, same rules, same ``@auth`` values (ignored without rules).
    """

    name: str
    collection: CollectionDef
    rules: tuple[Bound, ...]
    context: Mapping[str, Any]
    group: Hashable

    def sees(self, event: Event, now: datetime) -> bool:
        """Whether the rules hold on the event's row image."""
        if not self.rules:
            return True
        row = event.stored_row(self.collection)
        context = {**self.context, "now": now}
        return all(evaluate(rule, row, context) for rule in self.rules)


def resolve_grants(
    records: RecordService,
    catalog: ProjectCatalog,
    principal: Principal,
    names: Sequence[str],
) -> dict[int, Grant]:
    """The grants of ``principal`` on collections ``names``, by collection id.

    Raises ``BadRequest`` for no names, ``NotFound`` for an unknown collection,
    ``Unauthorized`` when an anonymous caller is denied (signing in may help) and
    ``Forbidden`` when anyone else is."""
    if not names:
        raise BadRequest(
            "name at least one collection to watch", code="no_collections", field="collections"
        )
    grants: dict[int, Grant] = {}
    for name in names:
        rules = []
        for action in ACTIONS:
            try:
                target = records.target(catalog, catalog.project.id, name, principal, SCOPE, action)
            except Forbidden as denied:
                if principal.kind == "anonymous":
                    raise Unauthorized(
                        f"sign in or send an API key to watch {name!r}", code="unauthorized"
                    ) from denied
                raise
            if target.rule is not None:
                rules.append(target.rule)
        collection = target.collection
        texts = tuple(collection.policy(action) for action in ACTIONS) if rules else ()
        auth = tuple(sorted(principal.context.items())) if rules else ()
        grants[collection.id] = Grant(
            name, collection, tuple(rules), principal.context, (collection.id, texts, auth)
        )
    return grants
