"""Validation rules in the catalog: ``field_rules`` (a field's rules, in order) and
``record_rules`` (conditions and compound uniqueness on whole records).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04 20:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _created() -> sa.Column:
    return sa.Column(
        "created_at",
        sa.DateTime(timezone=True),
        server_default=sa.text("now()"),
        nullable=False,
    )


def upgrade() -> None:
    op.create_table(
        "field_rules",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("field_id", sa.BigInteger(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("value", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("constraint_name", sa.Text(), nullable=True),
        _created(),
        sa.ForeignKeyConstraint(
            ["field_id"],
            ["tessera.fields.id"],
            name=op.f("fk_field_rules_field_id_fields"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_field_rules")),
        sa.UniqueConstraint("field_id", "position", name=op.f("uq_field_rules_field_id_position")),
        schema="tessera",
    )
    op.create_table(
        "record_rules",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("collection_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("definition", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        _created(),
        sa.ForeignKeyConstraint(
            ["collection_id"],
            ["tessera.collections.id"],
            name=op.f("fk_record_rules_collection_id_collections"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_record_rules")),
        sa.UniqueConstraint(
            "collection_id", "name", name=op.f("uq_record_rules_collection_id_name")
        ),
        schema="tessera",
    )


def downgrade() -> None:
    op.drop_table("record_rules", schema="tessera")
    op.drop_table("field_rules", schema="tessera")
