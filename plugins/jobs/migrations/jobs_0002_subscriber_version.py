"""Jobs: a counter of changes to webhooks and workflows, for the dispatcher's cache.

Every statement that inserts, updates, deletes or truncates webhooks or workflows bumps
``tessera.job_subscribers.version`` in its own transaction (a trigger, so no writer can
forget it, cascades from a deleted project included). The dispatcher reads the counter in
each pass and reloads which projects have active subscribers only when it moved.

Revision ID: jobs_0002
Revises: jobs_0001
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "jobs_0002"
down_revision = "jobs_0001"
branch_labels = None
depends_on = None

SCHEMA = "tessera"


def upgrade() -> None:
    op.create_table(
        "job_subscribers",
        sa.Column("version", sa.BigInteger(), server_default="0", nullable=False),
        schema=SCHEMA,
    )
    op.execute("INSERT INTO tessera.job_subscribers (version) VALUES (0)")
    op.execute(
        "CREATE FUNCTION tessera.job_subscribers_changed() RETURNS trigger"
        " LANGUAGE plpgsql AS $$"
        " BEGIN UPDATE tessera.job_subscribers SET version = version + 1; RETURN NULL; END $$"
    )
    for table in ("webhooks", "workflows"):
        op.execute(
            f"CREATE TRIGGER {table}_job_subscribers_changed"
            f" AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON tessera.{table}"
            " FOR EACH STATEMENT EXECUTE FUNCTION tessera.job_subscribers_changed()"
        )


def downgrade() -> None:
    for table in ("webhooks", "workflows"):
        op.execute(f"DROP TRIGGER {table}_job_subscribers_changed ON tessera.{table}")
    op.execute("DROP FUNCTION tessera.job_subscribers_changed()")
    op.drop_table("job_subscribers", schema=SCHEMA)
