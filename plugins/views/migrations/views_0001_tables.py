"""Views: saved query definitions and every version of them.

Revision ID: views_0001
Revises:
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "views_0001"
down_revision = None
branch_labels = ("views",)
depends_on = "0002"

SCHEMA = "tessera"


def _now() -> sa.Column:
    return sa.Column(
        "created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
    )


def upgrade() -> None:
    op.create_table(
        "views",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("project_id", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("active_version", sa.Integer(), nullable=False),
        sa.Column("created_by", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        _now(),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["tessera.projects.id"],
            name="fk_views_project_id_projects",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_views"),
        sa.UniqueConstraint("project_id", "name", name="uq_views_project_id_name"),
        schema=SCHEMA,
    )
    op.create_table(
        "view_versions",
        sa.Column("view_id", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("definition", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("created_by", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        _now(),
        sa.ForeignKeyConstraint(
            ["view_id"],
            ["tessera.views.id"],
            name="fk_view_versions_view_id_views",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("view_id", "version", name="pk_view_versions"),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("view_versions", schema=SCHEMA)
    op.drop_table("views", schema=SCHEMA)
