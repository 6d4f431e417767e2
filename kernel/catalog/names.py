"""Validation of every identifier that becomes part of SQL: projects, collections, fields.

A name is checked here once, when it enters the catalog; from then on SQLAlchemy quotes it.
Values never become identifiers, and no text from a user is ever spliced into SQL.
"""

from __future__ import annotations

import hashlib
import re

from kernel.errors import ValidationFailed

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
PROJECT_ID_PATTERN = re.compile(r"^[a-z][a-z0-9_]{2,39}$")
MAX_IDENTIFIER = 63

#: PostgreSQL's reserved key words (SQL:2016 column "PostgreSQL", reserved only) plus
#: names Tessera itself gives meaning to.
RESERVED = frozenset(
    """
    all analyse analyze and any array as asc asymmetric authorization between binary both
    case cast check collate collation column concurrently constraint create cross
    current_catalog current_date current_role current_schema current_time current_timestamp
    current_user default deferrable desc distinct do else end except false fetch for foreign
    freeze from full grant group having ilike in initially inner intersect into is isnull
    join lateral leading left like limit localtime localtimestamp natural not notnull null
    offset on only or order outer overlaps placing primary references returning right
    select session_user similar some symmetric system_user table tablesample then to
    trailing true union unique user using variadic verbose when where window with
    id created_at updated_at oid tableoid xmin xmax cmin cmax ctid
    """.split()
)


def check_name(name: object, *, what: str, field: str | None = None) -> str:
    """Return ``name`` if it is a valid collection or field name, else raise a 422.

    Valid: matches ``^[a-z][a-z0-9_]{0,62}$`` and is not a reserved word.
    """
    where = field or "name"
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise ValidationFailed(
            f"{what} name {name!r} must start with a lowercase letter and contain only "
            "lowercase letters, digits and underscores (at most 63 characters)",
            code="invalid_name",
            field=where,
        )
    if name in RESERVED:
        raise ValidationFailed(
            f"{what} name {name!r} is reserved; choose another", code="reserved_name", field=where
        )
    return name


def check_project_id(project_id: object) -> str:
    """Return ``project_id`` if it matches ``^[a-z][a-z0-9_]{2,39}$``, else raise a 422."""
    if not isinstance(project_id, str) or not PROJECT_ID_PATTERN.fullmatch(project_id):
        raise ValidationFailed(
            "project id must be 3 to 40 characters: a lowercase letter, then lowercase "
            "letters, digits or underscores",
            code="invalid_name",
            field="id",
        )
    return project_id


def project_schema(project_id: str) -> str:
    """The PostgreSQL schema holding a project's tables."""
    return f"p_{project_id}"


def constraint_name(prefix: str, table: str, columns: list[str] | tuple[str, ...]) -> str:
    """A deterministic index/constraint name that fits PostgreSQL's 63-character limit."""
    name = "_".join([prefix, table, *columns])
    if len(name) <= MAX_IDENTIFIER:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:10]
    return f"{name[: MAX_IDENTIFIER - 11]}_{digest}"


def record_rule_index_name(collection_id: int, rule: str) -> str:
    """The unique index of record rule ``rule`` of collection ``collection_id``:
    ``uq_c<collection id>_<rule>`` (63 characters at most). Named by the collection's id,
    so renames never leave it stale; the reconciler drops a valid index of this shape that
    no record rule names (:func:`kernel.ddl.reconcile.drop_orphaned_rule_indexes`)."""
    return f"uq_c{collection_id}_{rule}"[:MAX_IDENTIFIER]


#: What every :func:`transient_name` starts with, before the collection's id.
TRANSIENT_PREFIX = "tmp_c"


def transient_name(collection_id: int, final: str, definition: str = "") -> str:
    """The name under which an op builds an index or ``CHECK`` constraint on collection
    ``collection_id``'s table before its transaction (a concurrent step), for the
    transaction to rename to ``final`` or drop: ``tmp_c<collection id>_<digest>_<final>``,
    63 characters at most. The digest covers ``final`` and ``definition`` (the columns, the
    condition), so a build for another definition never passes for this one. Nothing
    Tessera keeps has this shape: the reconciler drops any index or constraint that has it
    while no op of the project is unfinished
    (:func:`kernel.ddl.reconcile.drop_orphaned_transients`)."""
    digest = hashlib.sha256(f"{final}\0{definition}".encode()).hexdigest()[:10]
    return f"{TRANSIENT_PREFIX}{collection_id}_{digest}_{final}"[:MAX_IDENTIFIER]
