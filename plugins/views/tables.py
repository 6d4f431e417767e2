"""The views plugin's tables, in the ``tessera`` schema (migrated by its own Alembic branch)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncEngine

from kernel import NotFound
from kernel.db.schema import (
    NAMING_CONVENTION,
    SCHEMA,
    id_column,
    parent_column,
    project_column,
    timestamp_column,
)

metadata = sa.MetaData(schema=SCHEMA, naming_convention=NAMING_CONVENTION)

views = sa.Table(
    "views",
    metadata,
    id_column(),
    project_column(),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("active_version", sa.Integer, nullable=False),
    sa.Column("created_by", JSONB, nullable=False),
    timestamp_column("created_at"),
    sa.UniqueConstraint("project_id", "name"),
)

# Every version of every view is kept; a definition names collections and fields by name
# (renames rewrite them in place, in every version, see references.py).
view_versions = sa.Table(
    "view_versions",
    metadata,
    parent_column("view_id", views.c.id, primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("definition", JSONB, nullable=False),
    sa.Column("created_by", JSONB, nullable=False),
    timestamp_column("created_at"),
)


def active_views() -> sa.Select:
    """Views joined with their active version's definition."""
    return sa.select(
        views.c.id,
        views.c.name,
        views.c.active_version,
        views.c.created_by,
        views.c.created_at,
        view_versions.c.definition,
    ).join(
        view_versions,
        sa.and_(
            view_versions.c.view_id == views.c.id,
            view_versions.c.version == views.c.active_version,
        ),
    )


async def list_active(engine: AsyncEngine, project_id: str) -> list[Any]:
    """Every view of the project with its active definition, by name."""
    async with engine.connect() as conn:
        query = active_views().where(views.c.project_id == project_id).order_by(views.c.name)
        return list((await conn.execute(query)).all())


async def read_active(engine: AsyncEngine, project_id: str, name: str) -> Any:
    """View ``name``'s row with its active definition; 404 ``view_not_found``."""
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                active_views().where(views.c.project_id == project_id, views.c.name == name)
            )
        ).one_or_none()
    if row is None:
        raise NotFound(f"view {name!r} not found", code="view_not_found")
    return row
