"""Immutable snapshots of a project's catalog, as the request path and DDL ops see it.

A :class:`ProjectCatalog` is loaded from the ``tessera`` schema in one go and never changes;
a schema change produces a new snapshot with a higher ``catalog_version``. Soft-dropped
collections and fields stay in the snapshot (ops need them) but the ``live`` lookups hide
them. Aliases left by renames resolve old names while they live.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from kernel.fields import FieldType

ACTIONS = ("list", "read", "create", "update", "delete")
SYSTEM_COLUMNS = ("id", "created_at", "updated_at")


class _NoDefault:
    """The marker of a field without a default (``None`` is a valid default: JSON null)."""

    def __repr__(self) -> str:
        return "NO_DEFAULT"


NO_DEFAULT: Any = _NoDefault()


class ProjectSettings(BaseModel):
    """Per-project settings, stored as JSON on the project row."""

    model_config = ConfigDict(extra="forbid")

    timezone: str = Field(default="UTC", description="IANA zone for date → datetime conversions")
    alias_grace_days: int = Field(default=30, ge=0, le=3650)
    purge_retention_days: int = Field(default=7, ge=0, le=3650)
    max_page_limit: int | None = Field(default=None, ge=1, le=10000)
    allow_signup: bool = True
    maintenance: bool = False


@dataclass(frozen=True, slots=True)
class AliasDef:
    """An old name kept working after a rename, until ``expires_at`` or retirement."""

    id: int
    kind: Literal["collection", "field"]
    old_name: str
    collection_id: int
    field_id: int | None
    expires_at: datetime
    retired_at: datetime | None
    created_at: datetime

    def live(self, now: datetime) -> bool:
        return self.retired_at is None and self.expires_at > now


@dataclass(frozen=True, slots=True)
class RuleDef:
    """A validation rule stored with its field: a rule type's name and its ``value``.

    ``constraint`` names the ``CHECK`` constraint that enforces it in the database too
    (``None``: the rule has no exact database form)."""

    type_name: str
    value: Any
    constraint: str | None = None

    def describe(self) -> dict[str, Any]:
        return {"type": self.type_name, "value": self.value}


@dataclass(frozen=True, slots=True)
class RecordRuleDef:
    """A rule on the whole record, by name: ``{when?, require?, check?}`` (fields that
    must have a value, or a condition that must hold, when ``when`` holds) or
    ``{unique}`` (fields unique together, enforced by the index ``index``)."""

    id: int
    name: str
    when: str | None = None
    require: tuple[str, ...] = ()
    check: str | None = None
    unique: tuple[str, ...] = ()
    index: str | None = None

    def describe(self) -> dict[str, Any]:
        described: dict[str, Any] = {"name": self.name}
        if self.unique:
            described["unique"] = list(self.unique)
            return described
        described["when"] = self.when
        if self.require:
            described["require"] = list(self.require)
        if self.check is not None:
            described["check"] = self.check
        return described


@dataclass(frozen=True, slots=True)
class FieldDef:
    """One field of a collection. ``type`` is ``None`` when its plugin is not enabled."""

    id: int
    name: str
    display_name: str
    type_name: str
    column: str
    options: Mapping[str, Any]
    required: bool
    unique: bool
    default: Any
    position: int
    is_deleted: bool
    deleted_at: datetime | None
    type: FieldType | None
    rules: tuple[RuleDef, ...] = ()

    @property
    def has_default(self) -> bool:
        return self.default is not NO_DEFAULT

    def describe(self) -> dict[str, Any]:
        """The field as the catalog API shows it."""
        described: dict[str, Any] = {
            "name": self.name,
            "display_name": self.display_name,
            "type": self.type_name,
            "column": self.column,
            "required": self.required,
            "unique": self.unique,
            "options": dict(self.options),
            "rules": [rule.describe() for rule in self.rules],
        }
        if self.has_default:
            described["default"] = self.default
        if self.is_deleted:
            described["deleted_at"] = self.deleted_at
        if self.type is None:
            described["unavailable"] = True
        return described


@dataclass(frozen=True)
class CollectionDef:
    """One collection: its table, fields (all of them, in order), policies and field aliases."""

    id: int
    name: str
    display_name: str
    table: str
    is_deleted: bool
    deleted_at: datetime | None
    created_at: datetime
    updated_at: datetime
    fields: tuple[FieldDef, ...]
    policies: Mapping[str, str | None]
    field_aliases: tuple[AliasDef, ...] = ()
    record_rules: tuple[RecordRuleDef, ...] = ()

    @cached_property
    def live_fields(self) -> dict[str, FieldDef]:
        """Fields the API exposes: not soft-dropped and with an enabled type, by name."""
        return {f.name: f for f in self.fields if not f.is_deleted and f.type is not None}

    @cached_property
    def deleted_fields(self) -> dict[str, FieldDef]:
        return {f.name: f for f in self.fields if f.is_deleted}

    def field(self, name: str) -> FieldDef | None:
        """Any field by its current name, soft-dropped ones included."""
        for candidate in self.fields:
            if candidate.name == name:
                return candidate
        return None

    def field_by_id(self, field_id: int) -> FieldDef | None:
        for candidate in self.fields:
            if candidate.id == field_id:
                return candidate
        return None

    def live_field_aliases(self, now: datetime) -> dict[str, tuple[FieldDef, AliasDef]]:
        """Old field names that still resolve at ``now``, to their live field."""
        resolved: dict[str, tuple[FieldDef, AliasDef]] = {}
        for alias in self.field_aliases:
            target = self.field_by_id(alias.field_id) if alias.field_id else None
            if alias.live(now) and target is not None and target.name in self.live_fields:
                resolved[alias.old_name] = (target, alias)
        return resolved

    def record_rule(self, name: str) -> RecordRuleDef | None:
        for rule in self.record_rules:
            if rule.name == name:
                return rule
        return None

    def policy(self, action: str) -> str | None:
        """The rule for ``action``: ``None`` admins only, ``""`` anyone, else an expression."""
        return self.policies.get(action)

    def describe(self, now: datetime, old_names: list[AliasDef] | None = None) -> dict[str, Any]:
        """The collection as the catalog API shows it; ``old_names`` are the live aliases
        of the collection itself (see :meth:`ProjectCatalog.old_names`)."""
        return {
            "name": self.name,
            "display_name": self.display_name,
            "table": self.table,
            "fields": [f.describe() for f in self.live_fields.values()],
            "policies": {action: self.policies.get(action) for action in ACTIONS},
            "rules": [rule.describe() for rule in self.record_rules],
            "aliases": [
                {
                    "id": alias.id,
                    "old_name": old,
                    "field": target.name,
                    "expires_at": alias.expires_at,
                }
                for old, (target, alias) in self.live_field_aliases(now).items()
            ],
            "old_names": [
                {"id": alias.id, "old_name": alias.old_name, "expires_at": alias.expires_at}
                for alias in old_names or []
            ],
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


@dataclass(frozen=True, slots=True)
class ProjectDef:
    id: str
    name: str
    schema: str
    catalog_version: int
    settings: ProjectSettings
    created_at: datetime
    updated_at: datetime

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "schema": self.schema,
            "catalog_version": self.catalog_version,
            "settings": self.settings.model_dump(),
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


@dataclass(frozen=True)
class ProjectCatalog:
    """Everything the kernel knows about one project's schema at one catalog version.

    ``runtime`` is a per-snapshot scratch space for derived, cacheable objects (SQLAlchemy
    tables, compiled statements); it dies with the snapshot when the catalog changes.
    """

    project: ProjectDef
    collections: Mapping[str, CollectionDef]
    collection_aliases: tuple[AliasDef, ...]
    runtime: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def version(self) -> int:
        return self.project.catalog_version

    @cached_property
    def live_collections(self) -> dict[str, CollectionDef]:
        return {name: c for name, c in self.collections.items() if not c.is_deleted}

    def collection_by_id(self, collection_id: int) -> CollectionDef | None:
        for collection in self.collections.values():
            if collection.id == collection_id:
                return collection
        return None

    def live_collection_aliases(self, now: datetime) -> dict[str, tuple[CollectionDef, AliasDef]]:
        """Old collection names that still resolve at ``now``, to their live collection."""
        resolved: dict[str, tuple[CollectionDef, AliasDef]] = {}
        for alias in self.collection_aliases:
            target = self.collection_by_id(alias.collection_id)
            if alias.live(now) and target is not None and not target.is_deleted:
                resolved[alias.old_name] = (target, alias)
        return resolved

    def old_names(self, collection: CollectionDef, now: datetime) -> list[AliasDef]:
        """The live aliases (old names) of ``collection``, oldest first."""
        return [
            alias
            for target, alias in self.live_collection_aliases(now).values()
            if target.id == collection.id
        ]

    def resolve_collection(
        self, name: str, now: datetime
    ) -> tuple[CollectionDef, AliasDef | None] | None:
        """The live collection called ``name`` now, or reached through a live alias."""
        collection = self.live_collections.get(name)
        if collection is not None:
            return collection, None
        return self.live_collection_aliases(now).get(name)
