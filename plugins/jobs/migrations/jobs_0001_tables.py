"""Jobs: webhooks, deliveries, workflows, runs and the dispatcher's outbox cursor.

Revision ID: jobs_0001
Revises:
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "jobs_0001"
down_revision = None
branch_labels = ("jobs",)
depends_on = "0001"

SCHEMA = "tessera"


def _now(name: str) -> sa.Column:
    return sa.Column(
        name, sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
    )


def _project(table: str) -> list:
    return [
        sa.Column("project_id", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["tessera.projects.id"],
            name=f"fk_{table}_project_id_projects",
            ondelete="CASCADE",
        ),
    ]


def upgrade() -> None:
    op.create_table(
        "webhooks",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        *_project("webhooks"),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("events", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("secret_salt", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("created_by", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        _now("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_webhooks"),
        schema=SCHEMA,
    )
    op.create_index("ix_webhooks_project_id", "webhooks", ["project_id"], schema=SCHEMA)
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("webhook_id", sa.BigInteger(), nullable=False),
        *_project("webhook_deliveries"),
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        sa.Column("event_type", sa.Text(), nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("status", sa.Text(), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        _now("next_attempt_at"),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        _now("created_at"),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status in ('pending', 'delivering', 'succeeded', 'failed')",
            name="ck_webhook_deliveries_status",
        ),
        sa.ForeignKeyConstraint(
            ["webhook_id"],
            ["tessera.webhooks.id"],
            name="fk_webhook_deliveries_webhook_id_webhooks",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_deliveries"),
        sa.UniqueConstraint(
            "webhook_id", "event_id", name="uq_webhook_deliveries_webhook_id_event_id"
        ),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_webhook_deliveries_status_next_attempt_at",
        "webhook_deliveries",
        ["status", "next_attempt_at"],
        schema=SCHEMA,
    )
    op.create_table(
        "workflows",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        *_project("workflows"),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("trigger", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("actions", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("created_by", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        _now("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_workflows"),
        schema=SCHEMA,
    )
    op.create_index("ix_workflows_project_id", "workflows", ["project_id"], schema=SCHEMA)
    op.create_table(
        "workflow_runs",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("workflow_id", sa.BigInteger(), nullable=False),
        *_project("workflow_runs"),
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        sa.Column("input", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("depth", sa.Integer(), server_default="0", nullable=False),
        sa.Column("status", sa.Text(), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        _now("next_attempt_at"),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "steps",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
        sa.Column("error", sa.Text(), nullable=True),
        _now("created_at"),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "status in ('pending', 'running', 'succeeded', 'failed', 'cut_off')",
            name="ck_workflow_runs_status",
        ),
        sa.ForeignKeyConstraint(
            ["workflow_id"],
            ["tessera.workflows.id"],
            name="fk_workflow_runs_workflow_id_workflows",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_workflow_runs"),
        sa.UniqueConstraint(
            "workflow_id", "event_id", name="uq_workflow_runs_workflow_id_event_id"
        ),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_workflow_runs_status_next_attempt_at",
        "workflow_runs",
        ["status", "next_attempt_at"],
        schema=SCHEMA,
    )
    op.create_table(
        "job_cursors",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("xact_id", sa.BigInteger(), nullable=False),
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        _now("updated_at"),
        sa.PrimaryKeyConstraint("name", name="pk_job_cursors"),
        schema=SCHEMA,
    )


def downgrade() -> None:
    for table in ("job_cursors", "workflow_runs", "workflows", "webhook_deliveries", "webhooks"):
        op.drop_table(table, schema=SCHEMA)
