"""The jobs plugin's tables, in the ``tessera`` schema (migrated by its own Alembic branch)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from kernel.db.schema import (
    NAMING_CONVENTION,
    SCHEMA,
    id_column,
    parent_column,
    project_column,
    timestamp_column,
)

metadata = sa.MetaData(schema=SCHEMA, naming_convention=NAMING_CONVENTION)


webhooks = sa.Table(
    "webhooks",
    metadata,
    id_column(),
    project_column(),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("events", ARRAY(sa.Text), nullable=False),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    # The signing secret is derived from the deployment secret and this salt, never stored.
    sa.Column("secret_salt", sa.Text, nullable=False),
    sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("created_by", JSONB, nullable=False),
    timestamp_column("created_at"),
    sa.Index(None, "project_id"),
)

webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    id_column(),
    parent_column("webhook_id", webhooks.c.id),
    project_column(),
    sa.Column("event_id", sa.BigInteger, nullable=False),
    sa.Column("event_type", sa.Text, nullable=False),
    sa.Column("payload", JSONB, nullable=False),
    sa.Column("status", sa.Text, nullable=False, server_default="pending"),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    timestamp_column("next_attempt_at"),
    sa.Column("lease_expires_at", sa.DateTime(timezone=True)),
    sa.Column("last_status_code", sa.Integer),
    sa.Column("last_error", sa.Text),
    timestamp_column("created_at"),
    sa.Column("delivered_at", sa.DateTime(timezone=True)),
    sa.UniqueConstraint("webhook_id", "event_id"),
    sa.CheckConstraint("status in ('pending', 'delivering', 'succeeded', 'failed')", name="status"),
    sa.Index(None, "status", "next_attempt_at"),
)

workflows = sa.Table(
    "workflows",
    metadata,
    id_column(),
    project_column(),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("trigger", JSONB, nullable=False),
    sa.Column("actions", JSONB, nullable=False),
    sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("created_by", JSONB, nullable=False),
    timestamp_column("created_at"),
    sa.Index(None, "project_id"),
)

workflow_runs = sa.Table(
    "workflow_runs",
    metadata,
    id_column(),
    parent_column("workflow_id", workflows.c.id),
    project_column(),
    sa.Column("event_id", sa.BigInteger, nullable=False),
    sa.Column("input", JSONB, nullable=False),
    sa.Column("depth", sa.Integer, nullable=False, server_default="0"),
    sa.Column("status", sa.Text, nullable=False, server_default="pending"),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    timestamp_column("next_attempt_at"),
    sa.Column("lease_expires_at", sa.DateTime(timezone=True)),
    sa.Column("steps", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
    sa.Column("error", sa.Text),
    timestamp_column("created_at"),
    sa.Column("started_at", sa.DateTime(timezone=True)),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    sa.Column("duration_ms", sa.Integer),
    sa.UniqueConstraint("workflow_id", "event_id"),
    sa.CheckConstraint(
        "status in ('pending', 'running', 'succeeded', 'failed', 'cut_off')", name="status"
    ),
    sa.Index(None, "status", "next_attempt_at"),
)

# Where the dispatcher has read the outbox up to.
job_cursors = sa.Table(
    "job_cursors",
    metadata,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("xact_id", sa.BigInteger, nullable=False),
    sa.Column("event_id", sa.BigInteger, nullable=False),
    timestamp_column("updated_at"),
)
