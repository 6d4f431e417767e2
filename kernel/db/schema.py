"""The platform catalog: tables in the ``tessera`` schema (Alembic migrates them).

Project data lives elsewhere, in one schema per project (``p_<id>``), owned by the DDL
engine. Tables here are SQLAlchemy Core; columns holding JSON use ``jsonb``.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from kernel.db.types import Xid8

SCHEMA = "tessera"

metadata = sa.MetaData(
    schema=SCHEMA,
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
    },
)


def _id() -> sa.Column:
    return sa.Column("id", sa.BigInteger, sa.Identity(always=False), primary_key=True)


def _created() -> sa.Column:
    return sa.Column(
        "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    )


def _updated() -> sa.Column:
    return sa.Column(
        "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    )


def _project_fk() -> sa.Column:
    return sa.Column(
        "project_id",
        sa.Text,
        sa.ForeignKey("projects.id", ondelete="CASCADE"),
        nullable=False,
    )


projects = sa.Table(
    "projects",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("catalog_version", sa.BigInteger, nullable=False, server_default="1"),
    sa.Column("settings", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    _created(),
    _updated(),
)

admins = sa.Table(
    "admins",
    metadata,
    _id(),
    sa.Column("email", sa.Text, nullable=False, unique=True),
    sa.Column("password_hash", sa.Text, nullable=False),
    _created(),
    sa.Column("last_login_at", sa.DateTime(timezone=True)),
)

project_users = sa.Table(
    "project_users",
    metadata,
    _id(),
    _project_fk(),
    sa.Column("email", sa.Text, nullable=False),
    sa.Column("password_hash", sa.Text, nullable=False),
    sa.Column("role", sa.Text, nullable=False, server_default="user"),
    _created(),
    sa.Column("last_login_at", sa.DateTime(timezone=True)),
    sa.UniqueConstraint("project_id", "email"),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    _id(),
    _project_fk(),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("prefix", sa.Text, nullable=False),
    sa.Column("key_hash", sa.Text, nullable=False, unique=True),
    sa.Column("scopes", ARRAY(sa.Text), nullable=False),
    sa.Column("collections", ARRAY(sa.Text)),
    sa.Column("role", sa.Text, nullable=False, server_default="service"),
    sa.Column("created_by", JSONB, nullable=False),
    _created(),
    sa.Column("revoked_at", sa.DateTime(timezone=True)),
    sa.Column("last_used_at", sa.DateTime(timezone=True)),
    sa.Index(None, "project_id"),
)

collections = sa.Table(
    "collections",
    metadata,
    _id(),
    _project_fk(),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("display_name", sa.Text, nullable=False),
    sa.Column("sql_table_name", sa.Text, nullable=False),
    sa.Column("is_deleted", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("deleted_at", sa.DateTime(timezone=True)),
    _created(),
    _updated(),
    sa.UniqueConstraint("project_id", "name"),
)

fields = sa.Table(
    "fields",
    metadata,
    _id(),
    sa.Column(
        "collection_id",
        sa.BigInteger,
        sa.ForeignKey("collections.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("display_name", sa.Text, nullable=False),
    sa.Column("type", sa.Text, nullable=False),
    sa.Column("sql_column_name", sa.Text, nullable=False),
    sa.Column("options", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    sa.Column("required", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("is_unique", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("has_default", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("default", JSONB),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("is_deleted", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("deleted_at", sa.DateTime(timezone=True)),
    _created(),
    _updated(),
    sa.UniqueConstraint("collection_id", "name"),
)

# Validation rules of a field, in order; ``type`` names a registered rule type.
field_rules = sa.Table(
    "field_rules",
    metadata,
    _id(),
    sa.Column(
        "field_id",
        sa.BigInteger,
        sa.ForeignKey("fields.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("type", sa.Text, nullable=False),
    sa.Column("value", JSONB),
    sa.Column("constraint_name", sa.Text),
    _created(),
    sa.UniqueConstraint("field_id", "position"),
)

# Rules on whole records of a collection, by name: ``definition`` is ``{when, require,
# check}`` or ``{unique, index}``.
record_rules = sa.Table(
    "record_rules",
    metadata,
    _id(),
    sa.Column(
        "collection_id",
        sa.BigInteger,
        sa.ForeignKey("collections.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("definition", JSONB, nullable=False),
    _created(),
    sa.UniqueConstraint("collection_id", "name"),
)

aliases = sa.Table(
    "aliases",
    metadata,
    _id(),
    _project_fk(),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("old_name", sa.Text, nullable=False),
    sa.Column(
        "collection_id",
        sa.BigInteger,
        sa.ForeignKey("collections.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("field_id", sa.BigInteger, sa.ForeignKey("fields.id", ondelete="CASCADE")),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("retired_at", sa.DateTime(timezone=True)),
    _created(),
    sa.Column("last_used_at", sa.DateTime(timezone=True)),
    sa.CheckConstraint("kind in ('collection', 'field')", name="kind"),
    sa.Index(None, "project_id", "kind"),
)

policies = sa.Table(
    "policies",
    metadata,
    sa.Column(
        "collection_id",
        sa.BigInteger,
        sa.ForeignKey("collections.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("action", sa.Text, primary_key=True),
    sa.Column("rule", sa.Text),
    _updated(),
    sa.CheckConstraint("action in ('list', 'read', 'create', 'update', 'delete')", name="action"),
)

schema_ops = sa.Table(
    "schema_ops",
    metadata,
    _id(),
    _project_fk(),
    sa.Column("op", sa.Text, nullable=False),
    sa.Column("args", JSONB, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("ddl", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
    sa.Column("warnings", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
    sa.Column("impact", JSONB),
    sa.Column("result", JSONB),
    sa.Column("error", JSONB),
    sa.Column("transitions", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
    sa.Column("actor", JSONB, nullable=False),
    _created(),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    sa.CheckConstraint("status in ('pending', 'running', 'applied', 'failed')", name="status"),
    sa.Index(None, "project_id", "id"),
)

# Audit rows outlive the project they describe, so no foreign key to projects.
audit_events = sa.Table(
    "audit_events",
    metadata,
    _id(),
    sa.Column("project_id", sa.Text),
    sa.Column("actor", JSONB, nullable=False),
    sa.Column("action", sa.Text, nullable=False),
    sa.Column("target_type", sa.Text, nullable=False),
    sa.Column("target", sa.Text, nullable=False),
    sa.Column("before", JSONB),
    sa.Column("after", JSONB),
    _created(),
    sa.Index(None, "project_id", "id"),
)

# The outbox: one row per committed record write, in the write's own transaction.
# Readers order by (xact_id, id) and only read below the oldest running transaction, so a
# cursor never skips an event that commits late.
events = sa.Table(
    "events",
    metadata,
    _id(),
    sa.Column("xact_id", Xid8, nullable=False, server_default=sa.text("pg_current_xact_id()")),
    sa.Column("project_id", sa.Text, nullable=False),
    sa.Column("collection_id", sa.BigInteger, nullable=False),
    sa.Column("collection", sa.Text, nullable=False),
    sa.Column("record_id", sa.BigInteger, nullable=False),
    sa.Column("type", sa.Text, nullable=False),
    sa.Column("changed_fields", ARRAY(sa.Text), nullable=False),
    sa.Column("row", JSONB),
    sa.Column("meta", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    _created(),
    sa.Index(None, "project_id", "xact_id", "id"),
    sa.Index(None, "xact_id", "id"),
    # Block range index: the retention pruner's search for old events (rows arrive in
    # time order, so it stays tiny).
    sa.Index(None, "created_at", postgresql_using="brin"),
)
