"""The plugin ``views.core``: saved, versioned, read-only query endpoints (see the package)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import APIRouter

from kernel import (
    AdminPanel,
    KernelSurface,
    PluginInfo,
    ProjectCatalog,
    ReferenceHolder,
    hookimpl,
)
from kernel.db.migrate import Migrations
from plugins.views import api, tables
from plugins.views.cache import CHANNEL, STATE_KEY, ViewCache
from plugins.views.config import ViewsConfig
from plugins.views.openapi import view_paths
from plugins.views.panels import PANELS
from plugins.views.references import ViewReferences
from plugins.views.runner import RUNNER_KEY, ViewRunner


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
def startup(tessera: KernelSurface) -> None:
    """The process's compiled views, dropped as the bus announces changes to them, and its
    view runner."""
    config: ViewsConfig = tessera.plugins.config(STATE_KEY)
    cache = ViewCache(tessera, config.cache_size)
    tessera.state[STATE_KEY] = cache
    tessera.state[RUNNER_KEY] = ViewRunner(tessera, config)
    tessera.bus.subscribe(CHANNEL, cache.on_bus_message)


@hookimpl
def register_routes(tessera: KernelSurface) -> list[APIRouter]:
    return [api.router]


@hookimpl
def register_reference_holders() -> list[type[ReferenceHolder]]:
    return [ViewReferences]


@hookimpl
async def project_openapi_paths(
    tessera: KernelSurface, catalog: ProjectCatalog, visible: Callable[[str], bool]
) -> dict[str, Any]:
    return await view_paths(tessera, catalog, visible)


@hookimpl
def register_admin_panels(tessera: KernelSurface) -> list[AdminPanel]:
    return PANELS
