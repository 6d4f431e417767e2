"""The jobs plugin's tables, in the ``tessera`` schema (migrated by its own Alembic branch)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from kernel.db.schema import projects

metadata = sa.MetaData(
    schema="tessera",
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
    },
)


def _now(name: str) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now())


def _project() -> sa.Column:
    return sa.Column(
        "project_id", sa.Text, sa.ForeignKey(projects.c.id, ondelete="CASCADE"), nullable=False
    )


webhooks = sa.Table(
    "webhooks",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    _project(),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("events", ARRAY(sa.Text), nullable=False),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    # The signing secret is derived from the deployment secret and this salt, never stored.
    sa.Column("secret_salt", sa.Text, nullable=False),
    sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("created_by", JSONB, nullable=False),
    _now("created_at"),
    sa.Index(None, "project_id"),
)

webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column(
        "webhook_id",
        sa.BigInteger,
        sa.ForeignKey("tessera.webhooks.id", ondelete="CASCADE"),
        nullable=False,
    ),
    _project(),
    sa.Column("event_id", sa.BigInteger, nullable=False),
    sa.Column("event_type", sa.Text, nullable=False),
    sa.Column("payload", JSONB, nullable=False),
    sa.Column("status", sa.Text, nullable=False, server_default="pending"),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    _now("next_attempt_at"),
    sa.Column("lease_expires_at", sa.DateTime(timezone=True)),
    sa.Column("last_status_code", sa.Integer),
    sa.Column("last_error", sa.Text),
    _now("created_at"),
    sa.Column("delivered_at", sa.DateTime(timezone=True)),
    sa.UniqueConstraint("webhook_id", "event_id"),
    sa.CheckConstraint("status in ('pending', 'delivering', 'succeeded', 'failed')", name="status"),
    sa.Index(None, "status", "next_attempt_at"),
)

workflows = sa.Table(
    "workflows",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    _project(),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("trigger", JSONB, nullable=False),
    sa.Column("actions", JSONB, nullable=False),
    sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("created_by", JSONB, nullable=False),
    _now("created_at"),
    sa.Index(None, "project_id"),
)

workflow_runs = sa.Table(
    "workflow_runs",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column(
        "workflow_id",
        sa.BigInteger,
        sa.ForeignKey("tessera.workflows.id", ondelete="CASCADE"),
        nullable=False,
    ),
    _project(),
    sa.Column("event_id", sa.BigInteger, nullable=False),
    sa.Column("input", JSONB, nullable=False),
    sa.Column("depth", sa.Integer, nullable=False, server_default="0"),
    sa.Column("status", sa.Text, nullable=False, server_default="pending"),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    _now("next_attempt_at"),
    sa.Column("lease_expires_at", sa.DateTime(timezone=True)),
    sa.Column("steps", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
    sa.Column("error", sa.Text),
    _now("created_at"),
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
    _now("updated_at"),
)

# How many times webhooks or workflows changed (one row, bumped by a trigger on both
# tables): the dispatcher reloads which projects have subscribers when it moves.
job_subscribers = sa.Table(
    "job_subscribers",
    metadata,
    sa.Column("version", sa.BigInteger, nullable=False, server_default="0"),
)
