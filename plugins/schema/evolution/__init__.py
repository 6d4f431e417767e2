"""The plugin ``schema.evolution``: change a live schema without breaking its clients.

Operations, by family: renames (``renames``: rename_collection, rename_field, each leaving
an alias for a grace period, and retire_alias), drops (``drops``: drop_field (soft),
restore_field, purge_field, restore_collection, purge_collection) and conversions
(``conversions``: change_field_type in place when safe, otherwise a copy-and-swap wizard
made of add_field, copy_field and ``swaps``' swap_fields), each carrying the field's rules
(``carried_rules``; on a large table a swap builds their indexes and constraints before its
transaction, :mod:`kernel.ddl.prebuilt`, with ``prebuilt``'s proof that a required field
has a value). All run through the kernel's DDL engine like any other
operation.
"""

from __future__ import annotations

from kernel import DdlOperation, PluginInfo, hookimpl
from plugins.schema.evolution.conversions import ChangeFieldType, CopyField
from plugins.schema.evolution.drops import (
    DropField,
    PurgeCollection,
    PurgeField,
    RestoreCollection,
    RestoreField,
)
from plugins.schema.evolution.renames import RenameCollection, RenameField, RetireAlias
from plugins.schema.evolution.swaps import SwapFields

OPERATIONS: list[type[DdlOperation]] = [
    RenameCollection,
    RenameField,
    DropField,
    RestoreField,
    PurgeField,
    ChangeFieldType,
    CopyField,
    SwapFields,
    RestoreCollection,
    PurgeCollection,
    RetireAlias,
]


@hookimpl
def plugin_info() -> PluginInfo:
    return PluginInfo(
        description="Schema evolution: renames with aliases, soft drops, safe type changes",
        requires=["schema.core"],
    )


@hookimpl
def register_ddl_operations() -> list[type[DdlOperation]]:
    return list(OPERATIONS)
