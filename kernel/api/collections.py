"""The catalog of a project's collections, and the shorthand routes that change it.

``POST .../collections``, ``POST .../fields`` and ``PUT .../policies`` are shorthands for
the schema operations ``create_collection``, ``add_field`` and ``set_policies``: they run
through the same engine, with the same history and audit.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from kernel.api.deps import PrincipalDep, SignedIn, TesseraDep
from kernel.api.responses import Shape, error_responses, json_response
from kernel.catalog.specs import FieldSpec
from kernel.errors import Forbidden, NotFound
from kernel.runtime import Tessera
from kernel.security.access import require_member

router = APIRouter(
    prefix="/api/projects/{project_id}/collections", tags=["schema"], dependencies=[SignedIn]
)


class CollectionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    display_name: str | None = None
    fields: list[FieldSpec] = Field(default_factory=list)


class Policies(BaseModel):
    model_config = ConfigDict(extra="forbid")

    list: str | None = None
    read: str | None = None
    create: str | None = None
    update: str | None = None
    delete: str | None = None


class CatalogField(Shape):
    """A field as the catalog shows it (``default`` when it has one, ``deleted_at`` once
    dropped, ``unavailable`` when its type's plugin is not enabled)."""

    name: str
    display_name: str
    type: str
    column: str
    required: bool
    unique: bool
    options: dict[str, Any]


class FieldAlias(Shape):
    id: int
    old_name: str
    field: str
    expires_at: datetime


class OldName(Shape):
    id: int
    old_name: str
    expires_at: datetime


class Collection(Shape):
    name: str
    display_name: str
    table: str
    fields: list[CatalogField]
    policies: Policies
    aliases: list[FieldAlias]
    old_names: list[OldName]
    created_at: datetime
    updated_at: datetime


class CollectionAlias(Shape):
    id: int
    old_name: str
    collection: str
    expires_at: datetime


class Collections(Shape):
    data: list[Collection]
    aliases: list[CollectionAlias]


#: What a schema operation's shorthand can refuse beyond a bad body: a taken name, a busy table.
_SCHEMA_CHANGE_ERRORS = error_responses(409)


async def describe_collection(tessera: Tessera, project_id: str, name: str) -> dict[str, Any]:
    catalog = await tessera.catalog.get(project_id)
    resolved = catalog.resolve_collection(name, datetime.now(UTC))
    if resolved is None:
        raise NotFound(f"collection {name!r} not found", code="collection_not_found")
    now = datetime.now(UTC)
    return resolved[0].describe(now, catalog.old_names(resolved[0], now))


@router.get(
    "", summary="Collections with their fields, policies and aliases", response_model=Collections
)
async def list_collections(
    project_id: str, tessera: TesseraDep, principal: PrincipalDep
) -> Response:
    catalog = await tessera.catalog.get(project_id, fresh=True)
    require_member(principal, project_id)
    now = datetime.now(UTC)
    data = [
        collection.describe(now, catalog.old_names(collection, now))
        for name, collection in sorted(catalog.live_collections.items())
        if principal.may_use(name)
    ]
    aliases = [
        {
            "id": alias.id,
            "old_name": old,
            "collection": target.name,
            "expires_at": alias.expires_at,
        }
        for old, (target, alias) in catalog.live_collection_aliases(now).items()
    ]
    return json_response({"data": data, "aliases": aliases})


@router.get("/{collection}", summary="One collection", response_model=Collection)
async def get_collection(
    project_id: str, collection: str, tessera: TesseraDep, principal: PrincipalDep
) -> Response:
    await tessera.catalog.get(project_id, fresh=True)
    require_member(principal, project_id)
    described = await describe_collection(tessera, project_id, collection)
    if not principal.may_use(described["name"]):
        raise Forbidden(
            f"this key may not access {described['name']!r}", code="collection_not_allowed"
        )
    return json_response(described)


@router.post(
    "",
    status_code=201,
    summary="Create a collection (op create_collection)",
    response_model=Collection,
    responses=_SCHEMA_CHANGE_ERRORS,
)
async def create_collection(
    project_id: str, body: CollectionCreate, tessera: TesseraDep, principal: PrincipalDep
) -> Response:
    await tessera.schema.apply(
        project_id, "create_collection", body.model_dump(exclude_unset=True), principal
    )
    return json_response(await describe_collection(tessera, project_id, body.name), 201)


@router.post(
    "/{collection}/fields",
    status_code=201,
    summary="Add a field (op add_field)",
    response_model=CatalogField,
    responses=_SCHEMA_CHANGE_ERRORS,
)
async def add_field(
    project_id: str,
    collection: str,
    body: FieldSpec,
    tessera: TesseraDep,
    principal: PrincipalDep,
) -> Response:
    args = {"collection": collection, "field": body.model_dump(exclude_unset=True)}
    await tessera.schema.apply(project_id, "add_field", args, principal)
    described = await describe_collection(tessera, project_id, collection)
    field = next(f for f in described["fields"] if f["name"] == body.name)
    return json_response(field, 201)


@router.put(
    "/{collection}/policies",
    summary="Set the collection's policies (op set_policies)",
    response_model=Policies,
    responses=_SCHEMA_CHANGE_ERRORS,
)
async def set_policies(
    project_id: str,
    collection: str,
    body: Policies,
    tessera: TesseraDep,
    principal: PrincipalDep,
) -> Response:
    args = {"collection": collection, "policies": body.model_dump()}
    await tessera.schema.apply(project_id, "set_policies", args, principal)
    return json_response((await describe_collection(tessera, project_id, collection))["policies"])
