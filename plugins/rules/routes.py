"""Routes: ``/api/projects/{p}/collections/{c}/rules`` (API.md, Records): a collection's
record rules. Adding and removing one are the schema operations ``add_record_rule`` and
``drop_record_rule``, with their history and audit; reading needs project membership."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Response

from kernel import CollectionDef, Forbidden, KernelSurface, NotFound, Principal
from kernel.api.deps import PrincipalDep, SignedIn, TesseraDep
from kernel.api.responses import Listing, Shape, error_responses, json_response
from kernel.security.access import require_member
from plugins.rules.record_rules import RecordRuleSpec

router = APIRouter(
    prefix="/api/projects/{project_id}/collections/{collection}",
    tags=["schema"],
    dependencies=[SignedIn],
)


class RecordRule(Shape):
    """A record rule: ``name`` and either ``unique`` (fields) or ``when`` with ``require``
    (fields) and/or ``check`` (a condition)."""

    name: str
    unique: list[str] | None = None
    when: str | None = None
    require: list[str] | None = None
    check: str | None = None


async def _collection(
    tessera: KernelSurface, project_id: str, name: str, principal: Principal
) -> CollectionDef:
    catalog = await tessera.catalog.get(project_id, fresh=True)
    require_member(principal, project_id)
    resolved = catalog.resolve_collection(name, datetime.now(UTC))
    if resolved is None:
        raise NotFound(f"collection {name!r} not found", code="collection_not_found")
    collection = resolved[0]
    if not principal.may_use(collection.name):
        raise Forbidden(
            f"this key may not access {collection.name!r}", code="collection_not_allowed"
        )
    return collection


def _described(collection: CollectionDef) -> list[dict[str, Any]]:
    return [rule.describe() for rule in collection.record_rules]


@router.get("/rules", summary="Record rules of the collection", response_model=Listing[RecordRule])
async def list_rules(
    project_id: str, collection: str, tessera: TesseraDep, principal: PrincipalDep
) -> Response:
    found = await _collection(tessera, project_id, collection, principal)
    return json_response({"data": _described(found)})


@router.post(
    "/rules",
    status_code=201,
    summary="Add a record rule (op add_record_rule)",
    response_model=RecordRule,
    responses=error_responses(409),
)
async def add_rule(
    project_id: str,
    collection: str,
    body: RecordRuleSpec,
    tessera: TesseraDep,
    principal: PrincipalDep,
) -> Response:
    current = (await _collection(tessera, project_id, collection, principal)).name
    args = {"collection": current, "rule": body.model_dump(exclude_unset=True)}
    await tessera.schema.apply(project_id, "add_record_rule", args, principal)
    found = await _collection(tessera, project_id, current, principal)
    rule = found.record_rule(body.name)
    return json_response(rule.describe() if rule else None, 201)


@router.delete(
    "/rules/{name}",
    status_code=204,
    summary="Remove a record rule (op drop_record_rule)",
    responses=error_responses(409),
)
async def drop_rule(
    project_id: str, collection: str, name: str, tessera: TesseraDep, principal: PrincipalDep
) -> Response:
    current = (await _collection(tessera, project_id, collection, principal)).name
    args = {"collection": current, "name": name}
    await tessera.schema.apply(project_id, "drop_record_rule", args, principal)
    return Response(status_code=204)
