"""The plugin ``jobs``: webhooks and workflows, durable and visible.

Without Redis, the actors run inside the API process (``make run`` needs nothing else);
with ``redis_url`` they run in ``tessera worker`` processes through dramatiq's Redis broker.
Either way the API processes dispatch and sweep, so nothing waits for a particular process.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter

from kernel import AdminPanel, KernelSurface, PluginInfo, ReferenceHolder, WorkflowAction, hookimpl
from kernel.commands import Command
from kernel.db.migrate import Migrations
from plugins.jobs import api, tables
from plugins.jobs.actions import BUILT_IN_ACTIONS
from plugins.jobs.config import JobsConfig
from plugins.jobs.host import JobHost
from plugins.jobs.panels import PANELS
from plugins.jobs.references import WebhookReferences, WorkflowReferences
from plugins.jobs.worker import ROLE, WorkerCommand

NAME = "jobs"


@hookimpl
def plugin_info() -> PluginInfo:
    return PluginInfo(
        description="Webhooks and workflows on dramatiq: durable, at least once, visible",
        config=JobsConfig,
    )


@hookimpl
def register_migrations() -> list[Migrations]:
    return [Migrations(Path(__file__).parent / "migrations", tables.metadata)]


@hookimpl
def register_workflow_actions() -> list[type[WorkflowAction]]:
    return list(BUILT_IN_ACTIONS)


@hookimpl
def register_commands() -> list[type[Command]]:
    return [WorkerCommand]


@hookimpl
def register_routes(tessera: KernelSurface) -> list[APIRouter]:
    return [api.router]


@hookimpl
def register_admin_panels(tessera: KernelSurface) -> list[AdminPanel]:
    return list(PANELS)


@hookimpl
def register_reference_holders() -> list[type[ReferenceHolder]]:
    return [WebhookReferences, WorkflowReferences]


@hookimpl
async def startup(tessera: KernelSurface) -> None:
    config: JobsConfig = tessera.plugins.config(NAME)
    host = JobHost(tessera, config, consume=tessera.state.get(ROLE) == "worker")
    await host.start()
    tessera.state[NAME] = host


@hookimpl
async def shutdown(tessera: KernelSurface) -> None:
    host = tessera.state.pop(NAME, None)
    if host is not None:
        await host.stop()
