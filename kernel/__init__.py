"""Tessera's kernel. Plugin authors import what they need from here::

    from kernel import FieldType, PluginInfo, hookimpl

Everything exported below is public and stable; anything else in ``kernel`` is internal.
"""

from kernel.admin_panels import AdminPanel, PanelContext, PanelRedirect
from kernel.backup import BackupPart
from kernel.catalog.model import (
    ACTIONS,
    SYSTEM_COLUMNS,
    AliasDef,
    CollectionDef,
    FieldDef,
    ProjectCatalog,
    ProjectSettings,
    RecordRuleDef,
    RuleDef,
)
from kernel.catalog.names import check_name, record_rule_index_name, transient_name
from kernel.catalog.record_rule_names import (
    fields_in_condition,
    record_rule_definition,
    renamed_record_rule,
)
from kernel.catalog.rules import (
    ResolvedRule,
    RuleSpec,
    resolve_rules,
    rule_constraint_names,
    rule_field_names,
)
from kernel.catalog.specs import FieldSpec, ResolvedField, resolve_field, with_rules
from kernel.catalog.system import queryable_fields
from kernel.catalog.writer import CatalogWriter
from kernel.condition_builder import (
    CONTEXT_VALUES,
    collection_condition_fields,
    condition_builder_html,
    condition_fields,
    condition_rows,
    condition_text,
)
from kernel.ddl.columns import (
    check_steps,
    count_breaking_rows,
    drop_check_step,
    field_column,
    refuse_breaking_rows,
    refuse_duplicates,
    server_default,
    system_columns,
    unique_index_name,
)
from kernel.ddl.inspect import SchemaInspector
from kernel.ddl.operation import ConcurrentStep, DdlOperation, OpContext, Plan, Step
from kernel.ddl.prebuilt import (
    PrebuiltCheck,
    PrebuiltIndex,
    ProvesBeforehand,
    build_before,
    build_steps,
    compiled_condition,
    refuse_missing,
)
from kernel.errors import (
    BadRequest,
    Conflict,
    ErrorItem,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    PluginError,
    QuotaExceeded,
    ServiceUnavailable,
    TesseraError,
    Unauthorized,
    ValidationFailed,
)
from kernel.events.bus import EventBus
from kernel.fields import (
    ConversionContext,
    FieldPlacement,
    FieldType,
    FieldValueError,
    ForeignKey,
    NoOptions,
    OnDelete,
    RenderContext,
)
from kernel.hookspecs import hookimpl, hookspec
from kernel.hot_route import hot_route
from kernel.json_values import JsonLimits, check_json_scalar, check_json_value
from kernel.lru import LruCache
from kernel.numbers import INT64_MAX, INT64_MIN, parse_int64
from kernel.operators import Operator
from kernel.pages import newest_first
from kernel.plugin_info import PluginInfo
from kernel.plugins import LoadedPlugin
from kernel.projects import ProjectCreate, ProjectUpdate
from kernel.quotas import QuotaPolicy
from kernel.realtime import Transport
from kernel.records.readable import Readable
from kernel.references import Dependent, ReferenceContext, ReferenceHolder, SchemaChange
from kernel.registry import Registry
from kernel.rules import RuleContext, RuleDefinitionError, RuleType, RuleViolation
from kernel.security.keys import KeySpec
from kernel.security.policies import validate_policies
from kernel.security.principal import SCOPES, Principal
from kernel.storage import (
    ObjectInfo,
    SignedRequest,
    StorageBackend,
    check_key,
    check_upload_quota,
)
from kernel.subscriptions import Subscription, SubscriptionClosed
from kernel.surface import KernelSurface
from kernel.tasks import stop_step, stop_tasks
from kernel.workflows import WorkflowAction

__all__ = [
    "ACTIONS",
    "CONTEXT_VALUES",
    "INT64_MAX",
    "INT64_MIN",
    "SCOPES",
    "SYSTEM_COLUMNS",
    "AdminPanel",
    "AliasDef",
    "BackupPart",
    "BadRequest",
    "CatalogWriter",
    "CollectionDef",
    "ConcurrentStep",
    "Conflict",
    "ConversionContext",
    "DdlOperation",
    "Dependent",
    "ErrorItem",
    "EventBus",
    "FieldDef",
    "FieldPlacement",
    "FieldSpec",
    "FieldType",
    "FieldValueError",
    "Forbidden",
    "ForeignKey",
    "JsonLimits",
    "KernelSurface",
    "KeySpec",
    "LoadedPlugin",
    "LruCache",
    "NoOptions",
    "NotFound",
    "ObjectInfo",
    "OnDelete",
    "OpContext",
    "Operator",
    "PanelContext",
    "PanelRedirect",
    "PayloadTooLarge",
    "Plan",
    "PluginError",
    "PluginInfo",
    "PrebuiltCheck",
    "PrebuiltIndex",
    "Principal",
    "ProjectCatalog",
    "ProjectCreate",
    "ProjectSettings",
    "ProjectUpdate",
    "ProvesBeforehand",
    "QuotaExceeded",
    "QuotaPolicy",
    "Readable",
    "RecordRuleDef",
    "ReferenceContext",
    "ReferenceHolder",
    "Registry",
    "RenderContext",
    "ResolvedField",
    "ResolvedRule",
    "RuleContext",
    "RuleDef",
    "RuleDefinitionError",
    "RuleSpec",
    "RuleType",
    "RuleViolation",
    "SchemaChange",
    "SchemaInspector",
    "ServiceUnavailable",
    "SignedRequest",
    "Step",
    "StorageBackend",
    "Subscription",
    "SubscriptionClosed",
    "TesseraError",
    "Transport",
    "Unauthorized",
    "ValidationFailed",
    "WorkflowAction",
    "build_before",
    "build_steps",
    "check_json_scalar",
    "check_json_value",
    "check_key",
    "check_name",
    "check_steps",
    "check_upload_quota",
    "collection_condition_fields",
    "compiled_condition",
    "condition_builder_html",
    "condition_fields",
    "condition_rows",
    "condition_text",
    "count_breaking_rows",
    "drop_check_step",
    "field_column",
    "fields_in_condition",
    "hookimpl",
    "hookspec",
    "hot_route",
    "newest_first",
    "parse_int64",
    "queryable_fields",
    "record_rule_definition",
    "record_rule_index_name",
    "refuse_breaking_rows",
    "refuse_duplicates",
    "refuse_missing",
    "renamed_record_rule",
    "resolve_field",
    "resolve_rules",
    "rule_constraint_names",
    "rule_field_names",
    "server_default",
    "stop_step",
    "stop_tasks",
    "system_columns",
    "transient_name",
    "unique_index_name",
    "validate_policies",
    "with_rules",
]
