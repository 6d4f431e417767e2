"""The outbox's ``created_at`` gets a BRIN index: the retention pruner finds old events
without reading the whole table (events are appended in time order, so a block range
index stays tiny and costs writes almost nothing).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 10:00:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        op.f("ix_events_created_at"),
        "events",
        ["created_at"],
        unique=False,
        schema="tessera",
        postgresql_using="brin",
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_events_created_at"), table_name="events", schema="tessera")
