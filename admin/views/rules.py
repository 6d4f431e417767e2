"""The rules editor of a collection: each field's validation rules, the record rules, and
a "Try input" panel that checks a payload against them without writing.

A field's ``required_if`` condition, like a record rule's ``when`` and ``check``, has its own
box with the visual condition builder; a field's other rules are edited as JSON. Every change
is a schema operation (``set_field_rules``, ``add_record_rule``, ``drop_record_rule``), so the
kernel checks each rule and the history records it; the try panel asks the records service's
``validate``, the same check every write runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from admin import urls
from admin.forms import FormErrors, text
from admin.rendering import json_text, redirect, render, success
from admin.routing import admin_router
from admin.session import AdminSession, SessionDep
from admin.site import AdminSite, SiteDep
from admin.views.lookup import find_collection, load_project
from admin.views.records import filterable_fields
from kernel import TesseraError, condition_fields

router = admin_router()

#: The field rule whose option is a condition, edited with the condition builder.
REQUIRED_IF = "required_if"


def _json(raw: str, what: str, errors: FormErrors, name: str) -> Any:
    try:
        return orjson.loads(raw or "null")
    except orjson.JSONDecodeError as error:
        errors.add(name, f"{what} is not valid JSON: {error}")
        return None


@dataclass(frozen=True, slots=True)
class RulesPage:
    """The rules page of one collection, as one request sees it."""

    request: Request
    site: AdminSite
    session: AdminSession
    project_id: str
    name: str

    async def render(
        self,
        *,
        errors: FormErrors | None = None,
        inputs: dict[str, str] | None = None,
        tried: dict[str, Any] | None = None,
        status: int = 200,
    ) -> Response:
        view = await load_project(self.site, self.session, self.project_id)
        collection, alias = find_collection(view.catalog, self.name)
        if alias is not None:
            return redirect(
                self.request, urls.collection(self.project_id, collection.name, "rules")
            )
        fields = list(collection.live_fields.values())
        shown: dict[str, str] = {}
        for field in fields:
            rules = [rule.describe() for rule in field.rules]
            shown[f"rules.{field.name}"] = json_text(
                [rule for rule in rules if rule["type"] != REQUIRED_IF]
            )
            shown[f"{REQUIRED_IF}.{field.name}"] = next(
                (rule["value"] for rule in rules if rule["type"] == REQUIRED_IF), ""
            )
        inputs = {**shown, **(inputs or {})}
        tried_errors: dict[str | None, list[str]] = {}
        for item in (tried or {}).get("errors", []):
            tried_errors.setdefault(item["field"], []).append(f"{item['code']}: {item['message']}")
        operators = self.site.tessera.operators
        condition_menu = condition_fields(filterable_fields(collection), operators)
        return render(
            self.request,
            "rules.html",
            status=status,
            project=view.project,
            collection=collection,
            fields=fields,
            rule_types=sorted(self.site.tessera.rule_types),
            required_if=REQUIRED_IF if REQUIRED_IF in self.site.tessera.rule_types else None,
            inputs=inputs,
            condition_menus={collection.name: condition_menu},
            errors=errors or FormErrors(),
            tried=tried,
            tried_errors=tried_errors,
        )

    async def apply(
        self, op: str, args: dict[str, Any], *, input_name: str, inputs: dict[str, str], done: str
    ) -> Response:
        """Apply ``op``; back to the page with ``done``, or with the kernel's errors beside
        ``input_name``."""
        try:
            await self.site.tessera.schema.apply(self.project_id, op, args, self.session.principal)
        except TesseraError as error:
            errors = FormErrors()
            for item in error.items:
                where = f" ({item.field})" if item.field else ""
                errors.add(input_name, f"{item.message}{where}")
            return await self.render(errors=errors, inputs=inputs, status=422)
        return redirect(
            self.request, urls.collection(self.project_id, self.name, "rules"), success(done)
        )


@router.get("/p/{project_id}/c/{name}/rules")
async def rules_page(
    project_id: str, name: str, request: Request, site: SiteDep, session: SessionDep
) -> Response:
    return await RulesPage(request, site, session, project_id, name).render()


@router.post("/p/{project_id}/c/{name}/rules/field/{field}")
async def save_field_rules(
    project_id: str, name: str, field: str, request: Request, site: SiteDep, session: SessionDep
) -> Response:
    page = RulesPage(request, site, session, project_id, name)
    form = await request.form()
    input_name, condition_name = f"rules.{field}", f"{REQUIRED_IF}.{field}"
    inputs = {key: text(form, key) for key in (input_name, condition_name)}
    errors = FormErrors()
    rules = _json(inputs[input_name], "The rules", errors, input_name) or []
    if inputs[condition_name] and not errors:
        if not isinstance(rules, list):
            errors.add(input_name, "The rules are a JSON list.")
        elif any(isinstance(rule, dict) and rule.get("type") == REQUIRED_IF for rule in rules):
            errors.add(input_name, f"Set {REQUIRED_IF} in its own box, not in the list.")
        else:
            rules = [*rules, {"type": REQUIRED_IF, "value": inputs[condition_name]}]
    if errors:
        return await page.render(errors=errors, inputs=inputs, status=422)
    args = {"collection": name, "field": field, "rules": rules}
    done = f"Rules of {field} saved."
    return await page.apply(
        "set_field_rules", args, input_name=input_name, inputs=inputs, done=done
    )


@router.post("/p/{project_id}/c/{name}/rules/record")
async def add_record_rule(
    project_id: str, name: str, request: Request, site: SiteDep, session: SessionDep
) -> Response:
    form = await request.form()
    inputs = {key: text(form, key) for key in ("rule_name", "when", "require", "check")}
    rule: dict[str, Any] = {"name": inputs["rule_name"]}
    if inputs["when"]:
        rule["when"] = inputs["when"]
    if inputs["require"]:
        rule["require"] = [part.strip() for part in inputs["require"].split(",") if part.strip()]
    if inputs["check"]:
        rule["check"] = inputs["check"]
    return await RulesPage(request, site, session, project_id, name).apply(
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
    return await RulesPage(request, site, session, project_id, name).apply(
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
    inputs = {"payload": text(form, "payload")}
    errors = FormErrors()
    record = _json(inputs["payload"], "The payload", errors, "payload")
    tried = None
    if not errors:
        outcome = await site.tessera.records.validate(
            project_id, name, {"record": record}, session.principal
        )
        tried = outcome.data
    page = RulesPage(request, site, session, project_id, name)
    return await page.render(
        errors=errors, inputs=inputs, tried=tried, status=422 if errors else 200
    )
