"""``KernelSurface``: what a plugin may use of the running kernel it is handed.

Hooks that take ``tessera`` and the driver base classes built as ``Driver(tessera)``
(:class:`~kernel.events.bus.EventBus`, :class:`~kernel.quotas.QuotaPolicy`,
:class:`~kernel.storage.StorageBackend`, :class:`~kernel.realtime.Transport`,
:class:`~kernel.backup.BackupPart`) receive the process's :class:`kernel.runtime.Tessera`;
this protocol lists the part of it that is public and stable. Anything else on ``Tessera``
is internal. ``tests/test_kernel_surface.py`` checks that ``Tessera`` has every member
and that the built-in plugins and the admin UI use no other.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from kernel.backup import BackupPart
    from kernel.catalog.cache import CatalogCache
    from kernel.config import Settings
    from kernel.db.engine import Database
    from kernel.ddl.engine import SchemaEngine
    from kernel.ddl.operation import DdlOperation
    from kernel.events.bus import EventBus
    from kernel.events.retention import EventRetention
    from kernel.fields import FieldType
    from kernel.operators import Operator
    from kernel.plugins import PluginSet
    from kernel.projects import ProjectService
    from kernel.realtime import Transport
    from kernel.records.cursor import CursorCodec
    from kernel.records.service import RecordService
    from kernel.registry import Registry
    from kernel.rules import RuleType
    from kernel.security.identity import IdentityService
    from kernel.security.keys import KeyService
    from kernel.security.principal import Principal
    from kernel.security.tokens import TokenService
    from kernel.storage import StorageBackend
    from kernel.subscriptions import SubscriptionService
    from kernel.workflows import WorkflowAction


@runtime_checkable
class KernelSurface(Protocol):
    """The running kernel as plugins see it.

    Available from ``Tessera.build``: configuration, plugins, registries and keys.
    Available once the kernel has started (in ``startup`` and later, in routes, in
    notification hooks, in drivers' methods): ``db``, ``bus``, ``catalog``,
    ``event_retention``; ``storage``
    is ``None`` until then.
    """

    #: The process's validated settings (``kernel.config.Settings``).
    settings: Settings
    #: The enabled plugins: ``.names``, ``.config(name)`` (a plugin's validated config),
    #: ``.call_each(hook, ...)``.
    plugins: PluginSet
    #: Per-process objects plugins keep between hooks, under their plugin's name.
    state: dict[str, Any]

    # Registries: the classes plugins registered, by name (``registry.owner(name)`` is
    # the plugin that registered one).
    field_types: Registry[FieldType]
    operators: Registry[Operator]
    ddl_operations: Registry[DdlOperation]
    rule_types: Registry[RuleType]
    storage_backends: Registry[StorageBackend]
    transports: Registry[Transport]
    event_buses: Registry[EventBus]
    backup_parts: Registry[BackupPart]
    workflow_actions: Registry[WorkflowAction]

    #: The deployment's secret (derive per-purpose keys from it, never use it raw).
    secret_key: bytes
    #: Signs and verifies session tokens.
    tokens: TokenService
    #: Signs and verifies page cursors (what :func:`kernel.newest_first` uses).
    cursors: CursorCodec

    #: PostgreSQL: ``.engine`` (SQLAlchemy async), ``.pool`` (asyncpg connections),
    #: ``.dedicated_connection()``. Set by ``start()``.
    db: Database
    #: The chosen event bus, started. Set by ``start()``.
    bus: EventBus
    #: The storage backend class ``storage_backend`` chose (``None``: no storage), and
    #: that backend, built once by ``start()``.
    storage_class: type[StorageBackend] | None
    storage: StorageBackend | None
    #: Project catalogs: ``await catalog.get(project_id)``. Set by ``start()``.
    catalog: CatalogCache
    #: Prunes the outbox; ``keep_unread(name, position_of)`` keeps what a plugin's reader
    #: has not read yet. Set by ``start()``.
    event_retention: EventRetention

    # Services: the same operations the REST API offers, with the same checks.
    schema: SchemaEngine
    records: RecordService
    projects: ProjectService
    identity: IdentityService
    api_keys: KeyService
    #: Realtime: permission-checked event streams for transports (streams open once
    #: the kernel has started).
    subscriptions: SubscriptionService

    async def resolve_token(self, token: str) -> Principal:
        """The principal of a session token (what ``/api/admin/login`` and a project's
        ``auth/login`` issue), as the API resolves a bearer token: verified and its
        account checked to still exist (an admin's with the password the token was issued
        under) once per process, then cached until its ``exp`` or its revocation.
        Raises :class:`kernel.Unauthorized` (``invalid_token``, ``token_expired``,
        ``token_revoked``). Needs a started kernel."""
        ...

    def describe_plugins(self) -> list[dict[str, Any]]:
        """The enabled plugins as ``GET /api/plugins`` shows them."""
        ...
