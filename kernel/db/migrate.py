"""Bring the platform schema to Alembic's heads, safely from several processes at once.

The kernel's revisions live in ``kernel/db/migrations/versions``. A plugin with tables of
its own (webhooks, usage counters ...) contributes a folder of revisions through the
``register_migrations`` hook: its scripts form their own branch (``branch_labels`` set to
the plugin, ``depends_on`` a kernel revision), all in the ``tessera`` schema, and every
enabled plugin's branch is upgraded with the kernel's.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.script.revision import ResolutionError
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from kernel.db.schema import SCHEMA, metadata
from kernel.errors import PluginError
from kernel.plugins import PluginSet

MIGRATIONS = Path(__file__).parent / "migrations"
# Any constant works: it only has to be the same in every process that migrates.
MIGRATION_LOCK_KEY = 0x7E55E7A


@dataclass(frozen=True, slots=True)
class Migrations:
    """A plugin's revisions: the folder of its Alembic scripts and the metadata of its
    tables (for the drift check). Tables belong to the ``tessera`` schema."""

    location: Path
    metadata: sa.MetaData


def alembic_config(
    connection: Connection | None = None, extra: Sequence[Migrations] = ()
) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("path_separator", "os")
    locations = [MIGRATIONS / "versions", *(m.location for m in extra)]
    config.set_main_option("version_locations", os.pathsep.join(str(p) for p in locations))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revisions(extra: Sequence[Migrations] = ()) -> set[str]:
    """The newest revision of the kernel's branch and of each plugin's."""
    return set(ScriptDirectory.from_config(alembic_config(extra=extra)).get_heads())


async def current_revisions(engine: AsyncEngine) -> set[str]:
    """The revisions the database is at (empty before the first migration)."""
    async with engine.connect() as conn:
        return await conn.run_sync(
            lambda sync: set(
                MigrationContext.configure(
                    sync, opts={"version_table_schema": SCHEMA}
                ).get_current_heads()
            )
        )


def missing_revisions(current: set[str], extra: Sequence[Migrations] = ()) -> set[str]:
    """Heads not yet applied: neither current nor an ancestor (or dependency) of a current
    revision."""
    script = ScriptDirectory.from_config(alembic_config(extra=extra))
    applied: set[str] = set()
    pending = list(current)
    while pending:
        revision = pending.pop()
        if revision in applied:
            continue
        try:
            node = script.get_revision(revision)
        except ResolutionError:
            continue  # a revision of a plugin that is not enabled here
        applied.add(revision)
        for parent in (*_as_tuple(node.down_revision), *_as_tuple(node.dependencies)):
            pending.append(parent)
    return set(script.get_heads()) - applied


def _as_tuple(value: str | Sequence[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


async def migrate(
    engine: AsyncEngine, extra: Sequence[Migrations] = (), revision: str = "heads"
) -> None:
    """Upgrade the kernel's and the plugins' branches; concurrent callers wait for each
    other on an advisory lock."""
    async with engine.connect() as conn:
        await conn.run_sync(_upgrade, revision, extra)


def _upgrade(connection: Connection, revision: str, extra: Sequence[Migrations]) -> None:
    # Lock first: even CREATE SCHEMA IF NOT EXISTS races with itself.
    connection.execute(sa.select(sa.func.pg_advisory_lock(MIGRATION_LOCK_KEY)))
    connection.execute(sa.text(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}"))
    connection.commit()
    try:
        command.upgrade(alembic_config(connection, extra), revision)
        connection.commit()
    finally:
        connection.execute(sa.select(sa.func.pg_advisory_unlock(MIGRATION_LOCK_KEY)))
        connection.commit()


async def schema_drift(engine: AsyncEngine, extra: Sequence[Migrations] = ()) -> list:
    """Differences between the models (the kernel's and the plugins') and the database."""
    combined = sa.MetaData(schema=SCHEMA)
    for source in (metadata, *(m.metadata for m in extra)):
        for table in source.tables.values():
            table.to_metadata(combined)
    async with engine.connect() as conn:
        return await conn.run_sync(_drift, combined)


def _drift(connection: Connection, target: sa.MetaData) -> list:
    context = MigrationContext.configure(
        connection,
        opts={
            "include_schemas": True,
            "include_name": lambda name, type_, parents: type_ != "schema" or name == SCHEMA,
            "version_table_schema": SCHEMA,
            "compare_type": True,
            "compare_server_default": True,
        },
    )
    return compare_metadata(context, target)


def plugin_migrations(plugins: PluginSet) -> list[Migrations]:
    """The migrations every enabled plugin registers."""
    found: list[Migrations] = []
    for plugin_name, returned in plugins.call_each("register_migrations"):
        for migrations in returned or ():
            if not isinstance(migrations, Migrations):
                raise PluginError(
                    f"plugin {plugin_name}: register_migrations returned {migrations!r}"
                )
            found.append(migrations)
    return found
