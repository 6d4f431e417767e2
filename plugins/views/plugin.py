"""The plugin ``views.core``: saved, versioned, read-only query endpoints (see the package)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter

from kernel import KernelSurface, PluginInfo, ReferenceHolder, hookimpl
from kernel.db.migrate import Migrations
from plugins.views import api, tables
from plugins.views.config import ViewsConfig
from plugins.views.references import ViewReferences


@hookimpl
def plugin_info() -> PluginInfo:
    return PluginInfo(
        description="Saved views: versioned, policy-safe, read-only query endpoints",
        config=ViewsConfig,
    )


@hookimpl
def register_migrations() -> list[Migrations]:
    return [Migrations(Path(__file__).parent / "migrations", tables.metadata)]


@hookimpl
def register_routes(tessera: KernelSurface) -> list[APIRouter]:
    return [api.router]


@hookimpl
def register_reference_holders() -> list[type[ReferenceHolder]]:
    return [ViewReferences]
