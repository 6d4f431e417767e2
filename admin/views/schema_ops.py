"""Preview, then apply: the confirmation pages every change to an existing schema goes
through (rename, drop, restore, purge, change type, retire an old name), and the guided
wizard for a type change that is not safe in place.

A preview is a GET (it changes nothing): ``op``, ``args`` (JSON, the fixed context such as
the collection and field), ``arg.<name>`` inputs a person filled in, ``opt.<type>.<key>``
options of a new type, ``back`` (where to return) and, inside a wizard, ``wizard`` (its
steps) and ``step``. The page shows the kernel's preview — DDL, warnings, impact, whether it
is safe — and a form that POSTs exactly that op to apply it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from starlette.datastructures import ImmutableMultiDict
from starlette.requests import Request
from starlette.responses import Response

from admin import urls
from admin.field_types import type_choices
from admin.forms import FormErrors, FormValueError, checked, read_options, text
from admin.rendering import failure, redirect, render, success, when
from admin.routing import admin_router
from admin.session import SessionDep
from admin.site import AdminSite, SiteDep
from admin.views.lookup import load_project
from kernel import BadRequest, TesseraError

router = admin_router()

DANGEROUS = frozenset({"drop_field", "purge_field", "retire_alias", "purge_collection"})
INPUT_LABELS = {
    "new_name": "New name",
    "grace_days": "Days the old name keeps working",
    "confirm": "Confirmation",
    "new_type": "New type",
    "keep_as": "Keep the old field as",
}


@dataclass(frozen=True, slots=True)
class WizardStep:
    op: str
    args: dict[str, Any]
    description: str


@dataclass(frozen=True, slots=True)
class Wizard:
    """A guided change: ops to preview and apply one after the other."""

    title: str
    steps: list[WizardStep]

    def to_json(self) -> str:
        return orjson.dumps(
            {
                "title": self.title,
                "steps": [
                    {"op": s.op, "args": s.args, "description": s.description} for s in self.steps
                ],
            }
        ).decode()

    @classmethod
    def parse(cls, raw: str) -> Wizard:
        """Raises :class:`BadRequest` for text that does not describe a wizard."""
        try:
            data = orjson.loads(raw)
            steps = [
                WizardStep(str(s["op"]), dict(s["args"]), str(s.get("description", "")))
                for s in data["steps"]
            ]
            return cls(str(data.get("title", "")), steps)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            raise BadRequest("This guided change's steps are malformed.") from None


@dataclass(frozen=True, slots=True)
class OpRequest:
    """One op to preview or apply, and where the person goes afterwards."""

    op: str
    args: dict[str, Any]
    back: str
    wizard: Wizard | None = None
    step: int = 0

    def query(self) -> list[tuple[str, str]]:
        params = [("op", self.op), ("args", orjson.dumps(self.args).decode()), ("back", self.back)]
        if self.wizard is not None:
            params += [("wizard", self.wizard.to_json()), ("step", str(self.step))]
        return params

    def preview_url(self, project_id: str) -> str:
        return urls.with_query(urls.project(project_id, "schema", "preview"), self.query())

    def in_wizard(self, step: int) -> OpRequest:
        """Step ``step`` of this request's wizard."""
        assert self.wizard is not None
        chosen = self.wizard.steps[step]
        return OpRequest(chosen.op, chosen.args, self.back, self.wizard, step)


def read_op_request(
    site: AdminSite, project_id: str, params: ImmutableMultiDict
) -> tuple[OpRequest, dict[str, str], FormErrors]:
    """The op a preview or apply request names, the ``arg.*`` text a person typed (shown
    again if the preview refuses it), and problems reading it. Raises :class:`BadRequest`
    for malformed ``args`` or ``wizard``."""
    try:
        args = orjson.loads(text(params, "args") or "{}")
    except orjson.JSONDecodeError:
        raise BadRequest("The operation's arguments are malformed.") from None
    if not isinstance(args, dict):
        raise BadRequest("The operation's arguments are malformed.")
    typed: dict[str, str] = {}
    for key, value in params.multi_items():
        if key.startswith("arg.") and isinstance(value, str):
            typed[key[4:]] = value.strip()
            if value.strip():
                args[key[4:]] = value.strip()
    errors = FormErrors()
    new_type = args.get("new_type")
    type_class = site.tessera.field_types.get(new_type) if isinstance(new_type, str) else None
    if type_class is not None and "options" not in args:
        try:
            args["options"] = read_options(type_class.Options, params, f"opt.{new_type}.")
        except FormValueError as error:
            errors.add(None, f"{error.key}: {error.message}")
    raw_wizard = text(params, "wizard")
    wizard = Wizard.parse(raw_wizard) if raw_wizard else None
    step = int(text(params, "step")) if text(params, "step").isdigit() else 0
    if wizard is not None and step >= len(wizard.steps):
        raise BadRequest("This guided change has no such step.")
    back = urls.safe_next(text(params, "back"), urls.project(project_id))
    return OpRequest(text(params, "op"), args, back, wizard, step), typed, errors


def _label(site: AdminSite, op: str) -> str:
    operation = site.tessera.ddl_operations.get(op)
    return operation.label if operation is not None else op


def _retry_inputs(typed: dict[str, str]) -> Any:
    def inputs(kernel_field: str) -> str | None:
        name = kernel_field.removeprefix("args.")
        return f"arg.{name}" if name in typed else None

    return inputs


@router.get("/p/{project_id}/schema/preview")
async def preview_page(
    project_id: str, request: Request, site: SiteDep, session: SessionDep
) -> Response:
    view = await load_project(site, session, project_id)
    op_request, typed, errors = read_op_request(site, project_id, request.query_params)
    preview: dict[str, Any] | None = None
    status = 200
    if not errors:
        try:
            preview = await site.tessera.schema.preview(
                project_id, op_request.op, op_request.args, session.principal
            )
        except TesseraError as error:
            errors, status = FormErrors.from_error(error, _retry_inputs(typed)), error.status
    wizard_start = None
    if preview is not None and preview.get("wizard"):
        steps = preview["wizard"]["steps"]
        wizard = Wizard(
            f"Change {op_request.args.get('field')} to {op_request.args.get('new_type')}",
            [WizardStep(s["op"], s["args"], s.get("description", "")) for s in steps],
        )
        wizard_start = OpRequest(
            steps[0]["op"], steps[0]["args"], op_request.back, wizard, 0
        ).preview_url(project_id)
    options_params = [
        (key, value) for key, value in request.query_params.multi_items() if key[:4] == "opt."
    ]
    return render(
        request,
        "preview.html",
        status=status,
        project=view.project,
        request_=op_request,
        label=_label(site, op_request.op),
        preview=preview,
        errors=errors,
        typed=typed,
        input_labels=INPUT_LABELS,
        types=type_choices(site.tessera),
        options_params=options_params,
        fixed_args={
            key: value
            for key, value in op_request.args.items()
            if key not in typed and not (key == "options" and options_params)
        },
        dangerous=op_request.op in DANGEROUS,
        maintenance=view.catalog.project.settings.maintenance,
        wizard_start=wizard_start,
        leave_empty_url=_leave_empty_url(project_id, op_request, preview),
    )


def _leave_empty_url(
    project_id: str, op_request: OpRequest, preview: dict[str, Any] | None
) -> str | None:
    """For a copy whose preview finds values that do not convert: the same preview, but
    leaving those values empty instead of failing."""
    if preview is None or op_request.op != "copy_field":
        return None
    conversion = (preview.get("impact") or {}).get("conversion") or {}
    if not conversion.get("failing") or op_request.args.get("on_error") == "null":
        return None
    relaxed = OpRequest(
        op_request.op,
        {**op_request.args, "on_error": "null"},
        op_request.back,
        op_request.wizard,
        op_request.step,
    )
    return relaxed.preview_url(project_id)


def describe_result(label: str, applied: dict[str, Any]) -> str:
    """A sentence about what an applied op did, for the next page's message."""
    result = applied.get("result") or {}
    parts = [f"{label}: done."]
    if result.get("alias_expires_at"):
        parts.append(
            f"The old name {result.get('previous_name')} keeps working until "
            f"{when(result['alias_expires_at'])}."
        )
    if "copied" in result:
        parts.append(f"{result['copied']} values copied, {result.get('left_empty', 0)} left empty.")
    if result.get("purge_possible_from"):
        purge_from = when(result["purge_possible_from"])
        parts.append(f"Its data is kept; it can be purged from {purge_from}.")
    if result.get("previous_kept_as"):
        parts.append(f"The old field is kept, dropped, as {result['previous_kept_as']}.")
    return " ".join(parts)


@router.post("/p/{project_id}/schema/apply")
async def apply(project_id: str, request: Request, site: SiteDep, session: SessionDep) -> Response:
    form = await request.form()
    op_request, _, _ = read_op_request(site, project_id, form)
    label = _label(site, op_request.op)
    try:
        applied = await site.tessera.schema.apply(
            project_id,
            op_request.op,
            op_request.args,
            session.principal,
            override_maintenance=checked(form, "override_maintenance"),
        )
    except TesseraError as error:
        messages = " ".join(item.message for item in error.items)
        return redirect(
            request, op_request.preview_url(project_id), failure(f"Not applied. {messages}")
        )
    message = describe_result(label, applied)
    wizard = op_request.wizard
    if wizard is not None and op_request.step + 1 < len(wizard.steps):
        following = op_request.in_wizard(op_request.step + 1)
        return redirect(
            request,
            following.preview_url(project_id),
            success(f"Step {op_request.step + 1} of {len(wizard.steps)} done. {message}"),
        )
    target = op_request.back
    if op_request.op == "rename_collection":
        target = urls.collection(project_id, applied["result"]["collection"])
    return redirect(request, target, success(message))
