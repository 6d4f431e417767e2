"""The platform catalog: projects, identities, collections, fields, policies, ops, audit, outbox.

Revision ID: 0001
Revises:
Create Date: 2026-11-24 17:11:50.587876
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from kernel.db.types import Xid8

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Column shapes this revision repeats. Kept here, not imported: a revision that has run
# must create the same tables for ever, whatever later code does.


def _id() -> sa.Column:
    return sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False)


def _timestamp(name: str) -> sa.Column:
    return sa.Column(
        name, sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
    )


def _cascade(table: str, column: str, parent: str) -> sa.ForeignKeyConstraint:
    """``table.column`` references ``parent.id``; rows go with their parent."""
    return sa.ForeignKeyConstraint(
        [column],
        [f"tessera.{parent}.id"],
        name=op.f(f"fk_{table}_{column}_{parent}"),
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.create_table(
        "admins",
        _id(),
        sa.Column("email", sa.Text(), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        _timestamp("created_at"),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_admins")),
        sa.UniqueConstraint("email", name=op.f("uq_admins_email")),
        schema="tessera",
    )
    op.create_table(
        "audit_events",
        _id(),
        sa.Column("project_id", sa.Text(), nullable=True),
        sa.Column("actor", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("target_type", sa.Text(), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("before", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("after", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        _timestamp("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
        schema="tessera",
    )
    op.create_index(
        op.f("ix_audit_events_project_id_id"),
        "audit_events",
        ["project_id", "id"],
        unique=False,
        schema="tessera",
    )
    op.create_table(
        "events",
        _id(),
        sa.Column(
            "xact_id", Xid8(), server_default=sa.text("pg_current_xact_id()"), nullable=False
        ),
        sa.Column("project_id", sa.Text(), nullable=False),
        sa.Column("collection_id", sa.BigInteger(), nullable=False),
        sa.Column("collection", sa.Text(), nullable=False),
        sa.Column("record_id", sa.BigInteger(), nullable=False),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("changed_fields", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("row", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column(
            "meta",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        _timestamp("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
        schema="tessera",
    )
    op.create_index(
        op.f("ix_events_project_id_xact_id_id"),
        "events",
        ["project_id", "xact_id", "id"],
        unique=False,
        schema="tessera",
    )
    op.create_index(
        op.f("ix_events_xact_id_id"), "events", ["xact_id", "id"], unique=False, schema="tessera"
    )
    op.create_table(
        "projects",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("catalog_version", sa.BigInteger(), server_default="1", nullable=False),
        sa.Column(
            "settings",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_projects")),
        schema="tessera",
    )
    op.create_table(
        "api_keys",
        _id(),
        sa.Column("project_id", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("prefix", sa.Text(), nullable=False),
        sa.Column("key_hash", sa.Text(), nullable=False),
        sa.Column("scopes", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("collections", postgresql.ARRAY(sa.Text()), nullable=True),
        sa.Column("role", sa.Text(), server_default="service", nullable=False),
        sa.Column("created_by", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        _timestamp("created_at"),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        _cascade("api_keys", "project_id", "projects"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
        schema="tessera",
    )
    op.create_index(
        op.f("ix_api_keys_project_id"), "api_keys", ["project_id"], unique=False, schema="tessera"
    )
    op.create_table(
        "collections",
        _id(),
        sa.Column("project_id", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("display_name", sa.Text(), nullable=False),
        sa.Column("sql_table_name", sa.Text(), nullable=False),
        sa.Column("is_deleted", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        _cascade("collections", "project_id", "projects"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_collections")),
        sa.UniqueConstraint("project_id", "name", name=op.f("uq_collections_project_id_name")),
        schema="tessera",
    )
    op.create_table(
        "project_users",
        _id(),
        sa.Column("project_id", sa.Text(), nullable=False),
        sa.Column("email", sa.Text(), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("role", sa.Text(), server_default="user", nullable=False),
        _timestamp("created_at"),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True),
        _cascade("project_users", "project_id", "projects"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_project_users")),
        sa.UniqueConstraint("project_id", "email", name=op.f("uq_project_users_project_id_email")),
        schema="tessera",
    )
    op.create_table(
        "schema_ops",
        _id(),
        sa.Column("project_id", sa.Text(), nullable=False),
        sa.Column("op", sa.Text(), nullable=False),
        sa.Column("args", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column(
            "ddl",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "warnings",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
        sa.Column("impact", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("result", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("error", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column(
            "transitions",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
        sa.Column("actor", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        _timestamp("created_at"),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status in ('pending', 'running', 'applied', 'failed')",
            name=op.f("ck_schema_ops_status"),
        ),
        _cascade("schema_ops", "project_id", "projects"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schema_ops")),
        schema="tessera",
    )
    op.create_index(
        op.f("ix_schema_ops_project_id_id"),
        "schema_ops",
        ["project_id", "id"],
        unique=False,
        schema="tessera",
    )
    op.create_table(
        "fields",
        _id(),
        sa.Column("collection_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("display_name", sa.Text(), nullable=False),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("sql_column_name", sa.Text(), nullable=False),
        sa.Column(
            "options",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("required", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("is_unique", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("has_default", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("default", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("is_deleted", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        _cascade("fields", "collection_id", "collections"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fields")),
        sa.UniqueConstraint("collection_id", "name", name=op.f("uq_fields_collection_id_name")),
        schema="tessera",
    )
    op.create_table(
        "policies",
        sa.Column("collection_id", sa.BigInteger(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("rule", sa.Text(), nullable=True),
        _timestamp("updated_at"),
        sa.CheckConstraint(
            "action in ('list', 'read', 'create', 'update', 'delete')",
            name=op.f("ck_policies_action"),
        ),
        _cascade("policies", "collection_id", "collections"),
        sa.PrimaryKeyConstraint("collection_id", "action", name=op.f("pk_policies")),
        schema="tessera",
    )
    op.create_table(
        "aliases",
        _id(),
        sa.Column("project_id", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("old_name", sa.Text(), nullable=False),
        sa.Column("collection_id", sa.BigInteger(), nullable=False),
        sa.Column("field_id", sa.BigInteger(), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        _timestamp("created_at"),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("kind in ('collection', 'field')", name=op.f("ck_aliases_kind")),
        _cascade("aliases", "collection_id", "collections"),
        _cascade("aliases", "field_id", "fields"),
        _cascade("aliases", "project_id", "projects"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_aliases")),
        schema="tessera",
    )
    op.create_index(
        op.f("ix_aliases_project_id_kind"),
        "aliases",
        ["project_id", "kind"],
        unique=False,
        schema="tessera",
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_aliases_project_id_kind"), table_name="aliases", schema="tessera")
    op.drop_table("aliases", schema="tessera")
    op.drop_table("policies", schema="tessera")
    op.drop_table("fields", schema="tessera")
    op.drop_index(op.f("ix_schema_ops_project_id_id"), table_name="schema_ops", schema="tessera")
    op.drop_table("schema_ops", schema="tessera")
    op.drop_table("project_users", schema="tessera")
    op.drop_table("collections", schema="tessera")
    op.drop_index(op.f("ix_api_keys_project_id"), table_name="api_keys", schema="tessera")
    op.drop_table("api_keys", schema="tessera")
    op.drop_table("projects", schema="tessera")
    op.drop_index(op.f("ix_events_xact_id_id"), table_name="events", schema="tessera")
    op.drop_index(op.f("ix_events_project_id_xact_id_id"), table_name="events", schema="tessera")
    op.drop_table("events", schema="tessera")
    op.drop_index(
        op.f("ix_audit_events_project_id_id"), table_name="audit_events", schema="tessera"
    )
    op.drop_table("audit_events", schema="tessera")
    op.drop_table("admins", schema="tessera")
