"""The rules editor of a collection: each field's validation rules, the record rules, and
a "Try input" panel that checks a payload against them without writing.

Every change is a schema operation (``set_field_rules``, ``add_record_rule``,
``drop_record_rule``), so the kernel checks each rule and the history records it; the try
panel asks the records service's ``validate``, the same check every write runs.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from admin import urls
from admin.conditions import condition_menu, condition_rows
from admin.forms import FormErrors, text
from admin.rendering import json_text, redirect, render, success
from admin.routing import admin_router
from admin.session import AdminSession, SessionDep
from admin.site import AdminSite, SiteDep
from admin.views.lookup import find_collection, load_project
from admin.views.records import filterable_fields
from kernel import TesseraError

router = admin_router()


def _json(raw: str, what: str, errors: FormErrors, name: str) -> Any:
    try:
        return orjson.loads(raw or "null")
    except orjson.JSONDecodeError as error:
        errors.add(name, f"{what} is not valid JSON: {error}")
        return None


async def _page(
    request: Request,
    site: AdminSite,
    session: AdminSession,
    project_id: str,
    name: str,
    *,
    errors: FormErrors | None = None,
    inputs: dict[str, str] | None = None,
    tried: dict[str, Any] | None = None,
    status: int = 200,
) -> Response:
    view = await load_project(site, session, project_id)
    collection, alias = find_collection(view.catalog, name)
    if alias is not None:
        return redirect(request, urls.collection(project_id, collection.name, "rules"))
    fields = list(collection.live_fields.values())
    shown = {
        f"rules.{field.name}": json_text([rule.describe() for rule in field.rules])
        for field in fields
    }
    inputs = {**shown, **(inputs or {})}
    tried_errors: dict[str | None, list[str]] = {}
    for item in (tried or {}).get("errors", []):
        tried_errors.setdefault(item["field"], []).append(f"{item['code']}: {item['message']}")
    return render(
        request,
        "rules.html",
        status=status,
        project=view.project,
        collection=collection,
        fields=fields,
        rule_types=sorted(site.tessera.rule_types),
        inputs=inputs,
        condition_fields=condition_menu(site.tessera.operators, filterable_fields(collection)),
        condition_rows={key: condition_rows(inputs.get(key)) for key in ("when", "check")},
        errors=errors or FormErrors(),
        tried=tried,
        tried_errors=tried_errors,
    )


@router.get("/p/{project_id}/c/{name}/rules")
async def rules_page(
    project_id: str, name: str, request: Request, site: SiteDep, session: SessionDep
) -> Response:
    return await _page(request, site, session, project_id, name)


async def _apply(
    request: Request,
    site: AdminSite,
    session: AdminSession,
    project_id: str,
    name: str,
    op: str,
    args: dict[str, Any],
    *,
    input_name: str,
    inputs: dict[str, str],
    done: str,
) -> Response:
    """Apply ``op``; back to the page with ``done``, or with the kernel's errors beside
    ``input_name``."""
    try:
        await site.tessera.schema.apply(project_id, op, args, session.principal)
    except TesseraError as error:
        errors = FormErrors()
        for item in error.items:
            where = f" ({item.field})" if item.field else ""
            errors.add(input_name, f"{item.message}{where}")
        return await _page(
            request, site, session, project_id, name, errors=errors, inputs=inputs, status=422
        )
    return redirect(request, urls.collection(project_id, name, "rules"), success(done))


@router.post("/p/{project_id}/c/{name}/rules/field/{field}")
async def save_field_rules(
    project_id: str, name: str, field: str, request: Request, site: SiteDep, session: SessionDep
) -> Response:
    form = await request.form()
    input_name = f"rules.{field}"
    raw = text(form, input_name)
    errors = FormErrors()
    rules = _json(raw, "The rules", errors, input_name)
    if errors:
        return await _page(
            request,
            site,
            session,
            project_id,
            name,
            errors=errors,
            inputs={input_name: raw},
            status=422,
        )
    args = {"collection": name, "field": field, "rules": rules or []}
    return await _apply(
        request,
        site,
        session,
        project_id,
        name,
        "set_field_rules",
        args,
        input_name=input_name,
        inputs={input_name: raw},
        done=f"Rules of {field} saved.",
    )


@router.post("/p/{project_id}/c/{name}/rules/record")
async def add_record_rule(
    project_id: str, name: str, request: Request, site: SiteDep, session: SessionDep
) -> Response:
    form = await request.form()
    keys = ("rule_name", "when", "require", "check")
    inputs = {key: text(form, key) for key in keys}
    rule: dict[str, Any] = {"name": inputs["rule_name"]}
    if inputs["when"]:
        rule["when"] = inputs["when"]
    if inputs["require"]:
        rule["require"] = [part.strip() for part in inputs["require"].split(",") if part.strip()]
    if inputs["check"]:
        rule["check"] = inputs["check"]
    return await _apply(
        request,
        site,
        session,
        project_id,
        name,
        "add_record_rule",
        {"collection": name, "rule": rule},
        input_name="record_rule",
        inputs=inputs,
        done=f"Rule {rule['name']} added.",
    )


@router.post("/p/{project_id}/c/{name}/rules/record/{rule}/delete")
async def drop_record_rule(
    project_id: str, name: str, rule: str, request: Request, site: SiteDep, session: SessionDep
) -> Response:
    return await _apply(
        request,
        site,
        session,
        project_id,
        name,
        "drop_record_rule",
        {"collection": name, "name": rule},
        input_name="record_rule",
        inputs={},
        done=f"Rule {rule} removed.",
    )


@router.post("/p/{project_id}/c/{name}/rules/try")
async def try_input(
    project_id: str, name: str, request: Request, site: SiteDep, session: SessionDep
) -> Response:
    form = await request.form()
    raw = text(form, "payload")
    errors = FormErrors()
    record = _json(raw, "The payload", errors, "payload")
    tried = None
    if not errors:
        outcome = await site.tessera.records.validate(
            project_id, name, {"record": record}, session.principal
        )
        tried = outcome.data
    return await _page(
        request,
        site,
        session,
        project_id,
        name,
        errors=errors,
        inputs={"payload": raw},
        tried=tried,
        status=422 if errors else 200,
    )
