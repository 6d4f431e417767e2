"""Every extension point of Tessera: the hook specifications for the project ``tessera``.

This module is the whole extension surface and its docstrings are the contract;
docs/plugins.md mirrors them with a worked example per hook. A plugin is a module (or any
object) whose functions carry ``@hookimpl`` and whose entry point sits in the group
``tessera.plugins``. Implementations may accept any subset of a hook's arguments.

Rules of the road:

- ``register_*`` hooks return **classes**; the kernel builds one registry per kind at
  startup and refuses duplicate names, naming both plugins.
- Hooks are called synchronously. I/O lives on the returned objects' ``async`` methods.
  Lifecycle and notification hooks may return an awaitable, which the kernel awaits.
- Registration hooks propagate errors (startup stops); notification hooks are isolated per
  plugin (logged with the plugin's name, the request goes on).
- Hooks only ever gain arguments; none is renamed or removed.
- ``tessera`` is the running kernel; :class:`kernel.KernelSurface` lists what a plugin may
  use of it.
- Each hook is called through pluggy once per implementing plugin (``PluginSet`` in
  :mod:`kernel.plugins`), so a wrapper (``wrapper=True``/``hookwrapper=True``) runs around
  each plugin's call and ``trace_plugins`` logs every call.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from fastapi import APIRouter

    from kernel.admin_panels import AdminPanel
    from kernel.backup import BackupPart
    from kernel.catalog.model import ProjectCatalog
    from kernel.commands import Command
    from kernel.db.migrate import Migrations
    from kernel.ddl.operation import DdlOperation
    from kernel.events.bus import EventBus
    from kernel.fields import FieldType
    from kernel.operators import Operator
    from kernel.plugin_info import PluginInfo
    from kernel.quotas import QuotaPolicy
    from kernel.realtime import Transport
    from kernel.references import ReferenceHolder
    from kernel.rules import RuleType
    from kernel.storage import StorageBackend
    from kernel.surface import KernelSurface
    from kernel.workflows import WorkflowAction

PROJECT = "tessera"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# ---------------------------------------------------------------------------------------
# Registration: what a plugin is and which classes it contributes. Called once at startup.
# ---------------------------------------------------------------------------------------


@hookspec
def plugin_info() -> PluginInfo:
    """Describe this plugin: a one-line description, what it requires, its config model.

    Called on each plugin separately (never merged across plugins). Returning nothing is
    the same as ``PluginInfo()``: no requirements and no config. A ``requires`` pattern that
    matches no enabled plugin stops startup; a config section that fails the plugin's model
    stops startup naming the key.
    """


@hookspec
def register_field_types() -> list[type[FieldType]]:
    """Field types this plugin provides.

    Each class's ``name`` is stored in the catalog and must be unique across plugins; a
    duplicate stops startup with an error naming both plugins. See
    :class:`kernel.fields.FieldType`.
    """


@hookspec
def register_ddl_operations() -> list[type[DdlOperation]]:
    """Schema operations this plugin provides (``add_relation``, ``rename_field`` ...).

    Each runs through the kernel's one DDL engine: validate, plan, preview, and apply under
    advisory locks in a single transaction with the catalog writes and the audit event.
    Names are unique across plugins. See :class:`kernel.ddl.operation.DdlOperation`.
    """


@hookspec
def register_operators() -> list[type[Operator]]:
    """Filter and view operators this plugin provides (``eq``, ``between`` ...).

    Names are unique across plugins. See :class:`kernel.operators.Operator`.
    """


@hookspec
def register_rule_types() -> list[type[RuleType]]:
    """Validation rule types this plugin provides (``min_length``, ``pattern`` ...).

    Names are unique across plugins. See :class:`kernel.rules.RuleType`.
    """


@hookspec
def register_storage_backends() -> list[type[StorageBackend]]:
    """Storage backends this plugin provides; the deployment picks one by name with the
    ``storage_backend`` setting, and the kernel builds that one at start as
    ``tessera.storage``. See :class:`kernel.storage.StorageBackend`.
    """


@hookspec
def register_transports() -> list[type[Transport]]:
    """Realtime transports this plugin provides (SSE, WebSocket); every enabled one is
    mounted. See :class:`kernel.realtime.Transport`.
    """


@hookspec
def register_event_buses() -> list[type[EventBus]]:
    """Event buses this plugin provides; the deployment picks one by name (``event_bus``).

    See :class:`kernel.events.bus.EventBus`.
    """


@hookspec
def register_quota_policies() -> list[type[QuotaPolicy]]:
    """Quota policies this plugin provides; every one registered is consulted.

    See :class:`kernel.quotas.QuotaPolicy`.
    """


@hookspec
def register_backup_parts() -> list[type[BackupPart]]:
    """Parts of a project archive this plugin exports and restores.

    See :class:`kernel.backup.BackupPart`.
    """


@hookspec
def register_workflow_actions() -> list[type[WorkflowAction]]:
    """Action types a workflow can run that this plugin provides.

    See :class:`kernel.workflows.WorkflowAction`.
    """


@hookspec
def register_reference_holders() -> list[type[ReferenceHolder]]:
    """Owners of stored references to collections and fields (policies, workflows,
    webhook patterns, views, rules ...) this plugin provides.

    Inside every schema op's locked transaction the engine asks each holder who depends on
    what the op drops, purges or retypes (a purge with dependents is refused, listing them)
    and has it rewrite its references to what the op renames, atomically with the DDL.
    Names are unique across plugins. See :class:`kernel.references.ReferenceHolder`.
    """


@hookspec
def register_migrations() -> list[Migrations]:
    """The plugin's own tables: ``Migrations(location, metadata)``.

    ``location`` is a folder of Alembic revision scripts forming the plugin's own branch
    (``branch_labels = ("<plugin>",)``, ``depends_on`` a kernel revision such as ``"0001"``);
    ``metadata`` describes the tables (schema ``tessera``) for the drift check. Every
    enabled plugin's branch is upgraded by ``tessera migrate`` and ``tessera serve``.
    """


@hookspec
def register_commands() -> list[type[Command]]:
    """Subcommands of the ``tessera`` CLI this plugin adds (``tessera worker``).

    See :class:`kernel.commands.Command`. Names are unique across plugins and must not
    shadow the kernel's (serve, migrate, plugins, admin).
    """


# ---------------------------------------------------------------------------------------
# Runtime: HTTP routes and reactions to what happens while serving.
# ---------------------------------------------------------------------------------------


@hookspec
def register_routes(tessera: KernelSurface) -> list[APIRouter]:
    """FastAPI routers to include in the application.

    ``tessera`` is the running kernel (:class:`kernel.KernelSurface`). Routers
    should set their own ``prefix`` and ``tags``; their routes appear in ``/openapi.json``
    and their errors should be :mod:`kernel.errors` exceptions.
    """


@hookspec
def project_openapi_paths(
    tessera: KernelSurface, catalog: ProjectCatalog, visible: Callable[[str], bool]
) -> Awaitable[dict[str, Any]] | dict[str, Any] | None:
    """OpenAPI path items this plugin adds to a project's document
    (``GET /api/projects/<id>/openapi.json``), keyed by path.

    ``catalog`` is the project's current catalog; ``visible(collection)`` says whether the
    caller may learn of a collection (a key restricted to some collections): leave out what
    depends on one it may not. May be a coroutine. A path the kernel already documents is
    not replaced.
    """


@hookspec
def on_schema_applied(
    tessera: KernelSurface, project_id: str, op: dict[str, Any]
) -> Awaitable[None] | None:
    """Notification after a schema operation committed (``op`` is its ``schema_ops`` row).

    Runs in the process that applied the op, after the commit; failures are logged and
    isolated. Use it to refresh a plugin's own caches or to announce the change.
    """


# ---------------------------------------------------------------------------------------
# UI: what a plugin adds to the admin.
# ---------------------------------------------------------------------------------------


@hookspec
def register_admin_panels(tessera: KernelSurface) -> list[AdminPanel]:
    """Admin pages (with menu entries) this plugin adds; see :class:`kernel.AdminPanel`.

    Field types add their form widgets through ``FieldType.widget`` instead.
    """


# ---------------------------------------------------------------------------------------
# Lifecycle: once per process.
# ---------------------------------------------------------------------------------------


@hookspec
def startup(tessera: KernelSurface) -> Awaitable[None] | None:
    """Called once the kernel is ready (database, bus, registries), before serving.

    May return an awaitable. An exception stops startup, naming the plugin.
    """


@hookspec
def shutdown(tessera: KernelSurface) -> Awaitable[None] | None:
    """Called when the process stops, in reverse plugin order.

    May return an awaitable, which gets ``plugin_shutdown_timeout_seconds``: one still
    running then is cancelled. A failure or a timeout is logged naming the plugin, and
    shutdown goes on. A hook that blocks the event loop cannot be bounded.
    """
