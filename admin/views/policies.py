"""The policies editor: who may list, read, create, update and delete a collection's
records, saved with the ``set_policies`` operation (so the kernel checks every rule)."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.datastructures import ImmutableMultiDict
from starlette.requests import Request
from starlette.responses import Response

from admin import urls
from admin.forms import FormErrors, text
from admin.rendering import redirect, render, success
from admin.routing import admin_router
from admin.session import AdminSession, SessionDep
from admin.site import AdminSite, SiteDep
from admin.views.lookup import find_collection, load_project
from admin.views.records import filterable_fields, operator_menu
from kernel import ACTIONS, CONTEXT_VALUES, TesseraError, condition_fields

router = admin_router()

#: Each action's rule is one of three modes; only "rule" takes an expression.
MODES = ("admins", "anyone", "rule")


@dataclass(frozen=True, slots=True)
class PolicyInput:
    action: str
    mode: str
    rule: str


def to_inputs(policies: dict[str, str | None]) -> list[PolicyInput]:
    inputs = []
    for action in ACTIONS:
        rule = policies.get(action)
        mode = "admins" if rule is None else "anyone" if rule == "" else "rule"
        inputs.append(PolicyInput(action, mode, rule or ""))
    return inputs


Policies = dict[str, str | None]


def read_policies(form: ImmutableMultiDict) -> tuple[Policies, list[PolicyInput], FormErrors]:
    """The policies a form sets, the inputs to show again, and the problems found."""
    policies: Policies = {}
    inputs = []
    errors = FormErrors()
    for action in ACTIONS:
        mode = text(form, f"mode.{action}")
        rule = text(form, f"rule.{action}")
        mode = mode if mode in MODES else "admins"
        inputs.append(PolicyInput(action, mode, rule))
        if mode == "admins":
            policies[action] = None
        elif mode == "anyone":
            policies[action] = ""
        elif not rule:
            errors.add(f"rule.{action}", "Write a rule, or choose another option.")
        else:
            policies[action] = rule
    return policies, inputs, errors


async def _page(
    request: Request,
    site: AdminSite,
    session: AdminSession,
    project_id: str,
    name: str,
    inputs: list[PolicyInput] | None = None,
    errors: FormErrors | None = None,
    status: int = 200,
) -> Response:
    view = await load_project(site, session, project_id)
    collection, alias = find_collection(view.catalog, name)
    if alias is not None:
        return redirect(request, urls.collection(project_id, collection.name, "policies"))
    fields = filterable_fields(collection)
    return render(
        request,
        "policies.html",
        status=status,
        project=view.project,
        collection=collection,
        inputs=inputs or to_inputs(dict(collection.policies)),
        fields=fields,
        operators=operator_menu(site, fields),
        condition_menus={
            collection.name: condition_fields(fields, site.tessera.operators, CONTEXT_VALUES)
        },
        errors=errors or FormErrors(),
    )


@router.get("/p/{project_id}/c/{name}/policies")
async def policies_page(
    project_id: str, name: str, request: Request, site: SiteDep, session: SessionDep
) -> Response:
    return await _page(request, site, session, project_id, name)


@router.post("/p/{project_id}/c/{name}/policies")
async def save_policies(
    project_id: str, name: str, request: Request, site: SiteDep, session: SessionDep
) -> Response:
    policies, inputs, errors = read_policies(await request.form())
    if not errors:
        try:
            await site.tessera.schema.apply(
                project_id,
                "set_policies",
                {"collection": name, "policies": policies},
                session.principal,
            )
        except TesseraError as error:
            errors = FormErrors.from_error(
                error, lambda action: f"rule.{action}" if action in ACTIONS else None
            )
        else:
            return redirect(
                request,
                urls.collection(project_id, name, "policies"),
                success("Policies saved."),
            )
    return await _page(request, site, session, project_id, name, inputs, errors, status=422)
