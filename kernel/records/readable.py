"""``Readable``: a collection as one principal may read it, for plugins that write their own
``SELECT`` (a saved view joining two collections, a report).

``tessera.records.readable(...)`` checks exactly what the records API checks before a read
(the project, the scope, an API key's collections, the action's policy) and hands back the
collection's table and its row rule. The plugin builds its statement over the table (or an
alias of it) and puts :meth:`Readable.condition` in its ``WHERE`` (or its join's ``ON``):
the statement then sees only rows the principal could read directly. The rule's values are
bind parameters: constants are static, ``@auth.*`` and ``@now`` are read from the context
(``{**principal.context, "now": ...}``) when the statement runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from kernel.catalog.model import CollectionDef
from kernel.expr import Bound, to_sql
from kernel.statements import Params


@dataclass(frozen=True, slots=True)
class Readable:
    """Collection ``collection`` as one principal may read it (see the module)."""

    collection: CollectionDef
    #: The collection's table: system columns and live fields, each named by its
    #: ``FieldDef.column``. Alias it (``table.alias("b")``) to select or join it.
    table: sa.Table
    #: The row rule still to apply; ``None`` when every row qualifies (an admin, a policy
    #: that lets anyone read). Part of a statement cache key: statements differ by it.
    rule: Bound | None

    def condition(self, source: sa.FromClause, params: Params) -> ColumnElement[bool] | None:
        """The row rule over ``source`` (the table or an alias of it), its values added to
        ``params``; ``None`` when every row qualifies."""
        if self.rule is None:
            return None
        columns: Any = source.c
        return to_sql(self.rule, lambda field: columns[field.column], params)
