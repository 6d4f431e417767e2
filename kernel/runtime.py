"""``Tessera``: the running kernel one process serves from, handed to every hook.

``Tessera.build(settings)`` loads plugins and builds the registries (synchronous, no I/O);
``await tessera.start()`` connects the database and the bus and runs plugins' ``startup``
hooks; ``await tessera.stop()`` undoes it in reverse. What plugins may use of it is
:class:`kernel.KernelSurface` (settings, plugins, registries, db, bus, catalog, services,
subscriptions).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
from pathlib import Path
from typing import Any

from kernel.backup import BackupPart
from kernel.catalog.cache import CHANNEL as CATALOG_CHANNEL
from kernel.catalog.cache import CatalogCache
from kernel.catalog.usage import AliasUsage
from kernel.config import Settings
from kernel.db.embedded import EmbeddedPostgres
from kernel.db.engine import Database
from kernel.db.migrate import current_revisions, missing_revisions, plugin_migrations
from kernel.ddl.engine import SchemaEngine
from kernel.ddl.operation import DdlOperation
from kernel.ddl.reconcile import OpReconciler
from kernel.errors import PluginError
from kernel.events.bus import EventBus
from kernel.events.outbox import EventNotifier
from kernel.events.retention import EventRetention
from kernel.fields import FieldType
from kernel.operators import Operator
from kernel.plugins import PluginSet, load_plugins
from kernel.projects import ProjectService
from kernel.quotas import QuotaPolicy
from kernel.realtime import Transport
from kernel.records.cursor import CursorCodec
from kernel.records.service import RecordService
from kernel.references import ReferenceHolder
from kernel.registry import Registry
from kernel.rules import RuleType
from kernel.security.api_keys import CHANNEL as KEYS_CHANNEL
from kernel.security.api_keys import ApiKeyResolver
from kernel.security.authenticate import Authenticator
from kernel.security.identity import IdentityService
from kernel.security.keys import KeyService
from kernel.security.principal import Principal
from kernel.security.references import ApiKeyReferences, PolicyReferences
from kernel.security.token_cache import ADMINS_CHANNEL, TokenResolver
from kernel.security.token_cache import CHANNEL as TOKENS_CHANNEL
from kernel.security.tokens import TokenService
from kernel.storage import StorageBackend
from kernel.subscriptions import SubscriptionService
from kernel.tasks import stop_step, stop_tasks
from kernel.workflows import WorkflowAction

log = logging.getLogger(__name__)
#: What a plugin provides through hooks whose results no registry keeps, by hook.
HOOK_KINDS = {
    "register_routes": "routes",
    "register_admin_panels": "admin panel",
    "register_commands": "command",
    "register_migrations": "migrations",
}


class SchemaOutOfDate(Exception):
    """The platform schema is not at the migrations' head."""


def load_secret_key(settings: Settings) -> bytes:
    """The configured secret, else one generated once and kept in ``data_dir/secret_key``."""
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value().encode()
    path = Path(settings.data_dir) / "secret_key"
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
    return path.read_text().strip().encode()


class Tessera:
    """The kernel of one process."""

    def __init__(self, settings: Settings, plugins: PluginSet) -> None:
        self.settings = settings
        self.plugins = plugins
        self.field_types: Registry[FieldType] = Registry.from_hook(
            plugins, "register_field_types", "field type", FieldType
        )
        self.operators: Registry[Operator] = Registry.from_hook(
            plugins, "register_operators", "operator", Operator
        )
        self.ddl_operations: Registry[DdlOperation] = Registry.from_hook(
            plugins, "register_ddl_operations", "schema operation", DdlOperation
        )
        self.rule_types: Registry[RuleType] = Registry.from_hook(
            plugins, "register_rule_types", "rule type", RuleType
        )
        self.storage_backends: Registry[StorageBackend] = Registry.from_hook(
            plugins, "register_storage_backends", "storage backend", StorageBackend
        )
        self.transports: Registry[Transport] = Registry.from_hook(
            plugins, "register_transports", "transport", Transport
        )
        self.event_buses: Registry[EventBus] = Registry.from_hook(
            plugins, "register_event_buses", "event bus", EventBus
        )
        self.quota_policy_classes: Registry[QuotaPolicy] = Registry.from_hook(
            plugins, "register_quota_policies", "quota policy", QuotaPolicy
        )
        self.backup_parts: Registry[BackupPart] = Registry.from_hook(
            plugins, "register_backup_parts", "backup part", BackupPart
        )
        self.workflow_actions: Registry[WorkflowAction] = Registry.from_hook(
            plugins, "register_workflow_actions", "workflow action", WorkflowAction
        )
        self.reference_holder_classes: Registry[ReferenceHolder] = Registry.from_hook(
            plugins, "register_reference_holders", "reference holder", ReferenceHolder
        )
        self._require_essentials()
        self.migrations = plugin_migrations(plugins)
        self.bus_class = self.event_buses.choose(settings.effective_event_bus(), "event_bus")
        self.storage_class = self._choose_storage()
        #: The chosen storage backend, built at start; ``None`` when none is registered.
        self.storage: StorageBackend | None = None

        self.secret_key = load_secret_key(settings)
        self.tokens = TokenService(self.secret_key, settings.token_ttl_seconds)
        self.cursors = CursorCodec(self.secret_key)
        self.schema = SchemaEngine(self)
        self.records = RecordService(self)
        self.projects = ProjectService(self)
        self.identity = IdentityService(self)
        self.api_keys = KeyService(self)
        self.subscriptions = SubscriptionService(self)
        self.quota_policies: list[QuotaPolicy] = []
        #: Every reference holder, asked by each schema op: the kernel's own (policies, API
        #: keys), then one instance of each plugin's.
        self.reference_holders: list[ReferenceHolder] = [
            PolicyReferences(self),
            ApiKeyReferences(self),
            *(holder(self) for _, holder in self.reference_holder_classes.items()),
        ]
        #: Per-process objects plugins keep between hooks, under their plugin's name.
        self.state: dict[str, Any] = {}
        self._embedded: EmbeddedPostgres | None = None
        self._background: list[asyncio.Task[None]] = []

    @classmethod
    def build(cls, settings: Settings) -> Tessera:
        """Load plugins and registries; raises :class:`PluginError` with a one-line cause."""
        return cls(settings, load_plugins(settings))

    def registries(self) -> dict[str, Registry]:
        """Every registry by the kind of thing it holds."""
        return {
            registry.kind: registry
            for registry in (
                self.field_types,
                self.operators,
                self.ddl_operations,
                self.rule_types,
                self.storage_backends,
                self.transports,
                self.event_buses,
                self.quota_policy_classes,
                self.backup_parts,
                self.workflow_actions,
                self.reference_holder_classes,
            )
        }

    async def resolve_token(self, token: str) -> Principal:
        """The principal of a session token, resolved as the API resolves bearer tokens
        (:class:`~kernel.security.token_cache.TokenResolver`)."""
        return await self.token_cache.resolve(token)

    def describe_plugins(self) -> list[dict[str, Any]]:
        """Each enabled plugin with the kinds of things it provides and its hooks (what
        ``GET /api/plugins`` and ``tessera plugins list`` show): the registries it fills,
        and the contributions no registry keeps (:data:`HOOK_KINDS`)."""
        registries = self.registries()
        described = []
        for plugin in self.plugins:
            hooks = self.plugins.hooks_of(plugin.name)
            kinds = sorted(
                {
                    kind
                    for kind, registry in registries.items()
                    if any(registry.owner(name) == plugin.name for name in registry)
                }
                | {HOOK_KINDS[hook] for hook in hooks if hook in HOOK_KINDS}
            )
            described.append(
                {
                    "name": plugin.name,
                    "version": plugin.version,
                    "distribution": plugin.distribution,
                    "description": plugin.info.description,
                    "kinds": kinds,
                    "hooks": hooks,
                    "requires": plugin.info.requires,
                }
            )
        return described

    def _require_essentials(self) -> None:
        for registry, example in (
            (self.field_types, "field_types.core"),
            (self.operators, "operators.core"),
            (self.event_buses, "transports.postgres"),
        ):
            if not len(registry):
                raise PluginError(f"no {registry.kind} is registered: enable {example} or another")

    def _choose_storage(self) -> type[StorageBackend] | None:
        """The class ``storage_backend`` names. Left unset with no backend registered, the
        deployment has no storage (a plugin that needs one declares ``requires``)."""
        if self.settings.storage_backend is None and not len(self.storage_backends):
            return None
        return self.storage_backends.choose(
            self.settings.effective_storage_backend(), "storage_backend"
        )

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Connect to PostgreSQL and the bus, check the schema, run plugin startup hooks."""
        url = self.settings.database_url
        if url is None:
            self._embedded = EmbeddedPostgres(self.settings.data_dir)
            url = await asyncio.to_thread(self._embedded.start)
        self.db = await Database.connect(
            url,
            pool_size=self.settings.db_pool_size,
            connect_timeout=self.settings.db_connect_timeout,
            control_pool_size=self.settings.db_control_pool_size,
            acquire_timeout=self.settings.db_acquire_timeout,
            lifetime=self.settings.db_connection_lifetime or None,
            statement_cache_size=self.settings.db_statement_cache_size,
            session_url=self.settings.session_database_url,
        )
        await self._check_schema()
        self.catalog = CatalogCache(
            self.db, self.field_types, max_projects=self.settings.catalog_cache_size
        )
        self.keys = ApiKeyResolver(self.db)
        self.alias_usage = AliasUsage(self.db)
        self.token_cache = TokenResolver(self.tokens, self.db, self.settings.token_cache_size)
        self.authenticator = Authenticator(self.token_cache, self.keys)
        self.bus = self.bus_class(self)
        self.bus.subscribe(CATALOG_CHANNEL, self.catalog.on_bus_message)
        self.bus.subscribe(KEYS_CHANNEL, self.keys.evict)
        self.bus.subscribe(TOKENS_CHANNEL, self.token_cache.evict)
        self.bus.subscribe(ADMINS_CHANNEL, self.token_cache.evict_admin)
        self.events = EventNotifier(self.bus)
        self.subscriptions.listen(self.bus)
        self.event_retention = EventRetention(
            self.db,
            retention_days=self.settings.events_retention_days,
            interval=self.settings.events_prune_interval_seconds,
        )
        self.op_reconciler = OpReconciler(
            self.db,
            interval=self.settings.schema_ops_reconcile_interval_seconds,
            lock_timeout_ms=self.settings.ddl_lock_timeout_ms,
        )
        await self.op_reconciler.reconcile_logged()
        self.quota_policies = [policy(self) for _, policy in self.quota_policy_classes.items()]
        if self.storage_class is not None:
            self.storage = self.storage_class(self)
        await self.plugins.call_lifecycle("startup", tessera=self)
        await self.bus.start()
        loops = {
            "api-keys-flusher": self.keys.run_flusher(),
            "alias-usage-flusher": self.alias_usage.run_flusher(),
            "event-retention": self.event_retention.run(),
            "op-reconciler": self.op_reconciler.run(),
        }
        self._background += [asyncio.create_task(loop, name=name) for name, loop in loops.items()]
        await self.identity.ensure_first_admin()

    async def stop(self) -> None:
        """Undo :meth:`start`, bounded and complete: cancelled background tasks get
        ``shutdown_timeout_seconds`` to end, each plugin's ``shutdown`` hook and the event
        bus's stop get ``plugin_shutdown_timeout_seconds`` (one still running then is
        cancelled; one that does not end, or that fails, is logged by name), and a step
        that fails is logged, never the end of shutdown: the bus, the database pools and
        the embedded server are always closed."""
        timeout = self.settings.shutdown_timeout_seconds
        await stop_step("realtime feeds", self.subscriptions.stop())
        await stop_tasks(self._background, within=timeout)
        self._background.clear()
        await stop_step("api key last-used flush", self.keys.flush_last_used())
        await stop_step("alias usage flush", self.alias_usage.flush())
        plugin_timeout = self.settings.plugin_shutdown_timeout_seconds
        await self.plugins.call_shutdown("shutdown", within=plugin_timeout, tessera=self)
        await stop_step("event notifier", self.events.close())
        await stop_step("event bus", self.bus.stop(), within=plugin_timeout)
        await stop_step("database pools", self.db.close())
        if self._embedded is not None:
            await stop_step("embedded PostgreSQL", asyncio.to_thread(self._embedded.stop))

    async def _check_schema(self) -> None:
        current = await current_revisions(self.db.engine)
        missing = missing_revisions(current, self.migrations)
        if missing:
            raise SchemaOutOfDate(
                f"the platform schema is at {', '.join(sorted(current)) or 'nothing'}; "
                f"{', '.join(sorted(missing))} not applied: "
                "run `tessera migrate` (tessera serve migrates by itself)"
            )
