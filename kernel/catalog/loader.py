"""Load a project's catalog snapshot from the ``tessera`` schema."""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from kernel.catalog.model import (
    NO_DEFAULT,
    AliasDef,
    CollectionDef,
    FieldDef,
    ProjectCatalog,
    ProjectDef,
    ProjectSettings,
    RecordRuleDef,
    RuleDef,
)
from kernel.catalog.names import project_schema
from kernel.db.schema import (
    aliases,
    collections,
    field_rules,
    fields,
    policies,
    projects,
    record_rules,
)
from kernel.fields import FieldType
from kernel.registry import Registry

log = logging.getLogger(__name__)


async def load_catalog(
    conn: AsyncConnection, project_id: str, field_types: Registry[FieldType]
) -> ProjectCatalog | None:
    """The project's whole catalog, or ``None`` when the project does not exist.

    Seven queries, whatever the size of the project; called on a cache miss, and by the DDL
    engine inside its locked transaction (so ops always validate against fresh state).
    """
    project_row = (
        await conn.execute(sa.select(projects).where(projects.c.id == project_id))
    ).one_or_none()
    if project_row is None:
        return None
    collection_rows = (
        await conn.execute(sa.select(collections).where(collections.c.project_id == project_id))
    ).all()
    in_project = sa.select(collections.c.id).where(collections.c.project_id == project_id)
    field_rows = (
        await conn.execute(
            sa.select(fields)
            .where(fields.c.collection_id.in_(in_project))
            .order_by(fields.c.collection_id, fields.c.position)
        )
    ).all()
    policy_rows = (
        await conn.execute(sa.select(policies).where(policies.c.collection_id.in_(in_project)))
    ).all()
    in_fields = sa.select(fields.c.id).where(fields.c.collection_id.in_(in_project))
    rule_rows = (
        await conn.execute(
            sa.select(field_rules)
            .where(field_rules.c.field_id.in_(in_fields))
            .order_by(field_rules.c.field_id, field_rules.c.position)
        )
    ).all()
    record_rule_rows = (
        await conn.execute(
            sa.select(record_rules)
            .where(record_rules.c.collection_id.in_(in_project))
            .order_by(record_rules.c.collection_id, record_rules.c.id)
        )
    ).all()
    alias_rows = (
        await conn.execute(
            sa.select(aliases).where(
                aliases.c.project_id == project_id,
                aliases.c.retired_at.is_(None),
                aliases.c.expires_at > sa.func.now(),
            )
        )
    ).all()

    rules_by_field: dict[int, list[RuleDef]] = defaultdict(list)
    for row in rule_rows:
        rules_by_field[row.field_id].append(RuleDef(row.type, row.value, row.constraint_name))
    record_rules_by_collection: dict[int, list[RecordRuleDef]] = defaultdict(list)
    for row in record_rule_rows:
        record_rules_by_collection[row.collection_id].append(_record_rule(row))
    fields_by_collection: dict[int, list[FieldDef]] = defaultdict(list)
    for row in field_rows:
        fields_by_collection[row.collection_id].append(
            _field(row, field_types, tuple(rules_by_field[row.id]))
        )
    policies_by_collection: dict[int, dict[str, str | None]] = defaultdict(dict)
    for row in policy_rows:
        policies_by_collection[row.collection_id][row.action] = row.rule
    alias_defs = [_alias(row) for row in alias_rows]
    field_aliases: dict[int, list[AliasDef]] = defaultdict(list)
    for alias in alias_defs:
        if alias.kind == "field":
            field_aliases[alias.collection_id].append(alias)

    collection_defs = {
        row.name: CollectionDef(
            id=row.id,
            name=row.name,
            display_name=row.display_name,
            table=row.sql_table_name,
            is_deleted=row.is_deleted,
            deleted_at=row.deleted_at,
            created_at=row.created_at,
            updated_at=row.updated_at,
            fields=tuple(fields_by_collection[row.id]),
            policies=policies_by_collection[row.id],
            field_aliases=tuple(field_aliases[row.id]),
            record_rules=tuple(record_rules_by_collection[row.id]),
        )
        for row in collection_rows
    }
    project = ProjectDef(
        id=project_row.id,
        name=project_row.name,
        schema=project_schema(project_row.id),
        catalog_version=project_row.catalog_version,
        settings=ProjectSettings.model_validate(project_row.settings),
        created_at=project_row.created_at,
        updated_at=project_row.updated_at,
    )
    return ProjectCatalog(
        project=project,
        collections=collection_defs,
        collection_aliases=tuple(a for a in alias_defs if a.kind == "collection"),
    )


def build_field_type(
    field_types: Registry[FieldType], type_name: str, options: dict[str, Any]
) -> FieldType | None:
    """An instance of the named type bound to ``options``; ``None`` if the type's plugin is
    not enabled (the field is then hidden rather than failing the whole project)."""
    field_type = field_types.get(type_name)
    if field_type is None:
        return None
    return field_type(field_type.Options.model_validate(options))


def _field(row: Any, field_types: Registry[FieldType], rules: tuple[RuleDef, ...]) -> FieldDef:
    field_type = build_field_type(field_types, row.type, row.options)
    if field_type is None:
        log.warning("field %s uses type %r, whose plugin is not enabled", row.name, row.type)
    return FieldDef(
        id=row.id,
        name=row.name,
        display_name=row.display_name,
        type_name=row.type,
        column=row.sql_column_name,
        options=row.options,
        required=row.required,
        unique=row.is_unique,
        default=row.default if row.has_default else NO_DEFAULT,
        position=row.position,
        is_deleted=row.is_deleted,
        deleted_at=row.deleted_at,
        type=field_type,
        rules=rules,
    )


def _record_rule(row: Any) -> RecordRuleDef:
    definition = row.definition
    return RecordRuleDef(
        id=row.id,
        name=row.name,
        when=definition.get("when"),
        require=tuple(definition.get("require", ())),
        check=definition.get("check"),
        unique=tuple(definition.get("unique", ())),
        index=definition.get("index"),
    )


def _alias(row: Any) -> AliasDef:
    return AliasDef(
        id=row.id,
        kind=row.kind,
        old_name=row.old_name,
        collection_id=row.collection_id,
        field_id=row.field_id,
        expires_at=row.expires_at,
        retired_at=row.retired_at,
        created_at=row.created_at,
    )
