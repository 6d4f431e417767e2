"""The plugin ``rules.core``: validation rules.

- Field rule types (hook ``register_rule_types``): min_length, max_length, min, max,
  pattern (RE2), enum, required_if. The kernel checks them on every write.
- Schema operations: ``set_field_rules``; record rules ``add_record_rule`` /
  ``drop_record_rule``; compound uniqueness ``add_unique`` / ``drop_unique``.
- Routes ``/api/projects/{p}/collections/{c}/rules``.
- A reference holder: rules follow field renames and are dependents of drops.
"""

from __future__ import annotations

from fastapi import APIRouter

from kernel import DdlOperation, KernelSurface, PluginInfo, ReferenceHolder, RuleType, hookimpl
from plugins.rules.operations import SetFieldRules
from plugins.rules.record_rules import RECORD_RULE_OPERATIONS
from plugins.rules.references import RuleReferences
from plugins.rules.routes import router
from plugins.rules.types import RULE_TYPES


@hookimpl
def plugin_info() -> PluginInfo:
    return PluginInfo(
        description="Validation rules: field rules (length, bounds, RE2 patterns, allowed "
        "values, required-if), record rules and compound uniqueness",
        requires=["schema.core"],
    )


@hookimpl
def register_rule_types() -> list[type[RuleType]]:
    return list(RULE_TYPES)


@hookimpl
def register_ddl_operations() -> list[type[DdlOperation]]:
    return [SetFieldRules, *RECORD_RULE_OPERATIONS]


@hookimpl
def register_reference_holders() -> list[type[ReferenceHolder]]:
    return [RuleReferences]


@hookimpl
def register_routes(tessera: KernelSurface) -> list[APIRouter]:
    return [router]
