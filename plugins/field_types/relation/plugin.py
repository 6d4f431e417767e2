"""Hook implementations of ``field_types.relation``."""

from __future__ import annotations

from kernel import DdlOperation, FieldType, PluginInfo, ReferenceHolder, hookimpl
from plugins.field_types.relation.field_type import RelationType
from plugins.field_types.relation.operations import ChangeRelation
from plugins.field_types.relation.references import RelationReferences


@hookimpl
def plugin_info() -> PluginInfo:
    return PluginInfo(
        description="The relation field type: links between records under real foreign keys"
    )


@hookimpl
def register_field_types() -> list[type[FieldType]]:
    return [RelationType]


@hookimpl
def register_reference_holders() -> list[type[ReferenceHolder]]:
    return [RelationReferences]


@hookimpl
def register_ddl_operations() -> list[type[DdlOperation]]:
    return [ChangeRelation]
