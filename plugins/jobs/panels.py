"""Admin pages of the jobs plugin: webhooks (create, secret once, delivery log, redeliver)
and workflows (trigger, condition and actions built with forms; run log). A workflow's
condition is built with the kernel's visual condition builder, on the fields of the
collection chosen in the trigger.

The pages call :class:`JobsService`, the same service as the REST routes, as the signed-in
admin. Markup is built here with every value escaped; the admin supplies layout and CSS.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any
from urllib.parse import urlencode

from pydantic import ValidationError

from kernel import (
    AdminPanel,
    KernelSurface,
    PanelRedirect,
    ValidationFailed,
    collection_condition_fields,
    condition_builder_html,
)
from plugins.jobs.service import JobsService, WebhookSpec, WorkflowSpec, WorkflowUpdate

ACTION_SLOTS = 3
#: Request values a workflow condition may use: it runs on the event alone, with the time.
CONDITION_VALUES = ("@now",)
STATUS_BADGES = {
    "succeeded": "success",
    "active": "success",
    "failed": "danger",
    "cut_off": "danger",
    "pending": "info",
    "delivering": "info",
    "running": "info",
}


def _e(value: Any) -> str:
    return escape("" if value is None else str(value))


def _badge(status: str) -> str:
    return f'<span class="badge badge-{STATUS_BADGES.get(status, "neutral")}">{_e(status)}</span>'


def _url(base: str, **query: Any) -> str:
    params = {k: v for k, v in query.items() if v not in (None, "")}
    return f"{base}?{urlencode(params)}" if params else base


async def _projects(
    request: Any, tessera: KernelSurface
) -> tuple[list[dict[str, Any]], str | None]:
    context = request.state.panel
    projects = await tessera.projects.list(context.principal)
    wanted = request.query_params.get("project")
    chosen = wanted if any(p["id"] == wanted for p in projects) else None
    if chosen is None and projects:
        chosen = projects[0]["id"]
    return projects, chosen


def _project_picker(context: Any, projects: list[dict[str, Any]], chosen: str | None) -> str:
    if not projects:
        return (
            '<div class="empty"><p class="empty-title">No projects yet</p>'
            '<p><a href="/admin/projects">Create a project</a> first.</p></div>'
        )
    options = "".join(
        f'<option value="{_e(p["id"])}"{" selected" if p["id"] == chosen else ""}>'
        f"{_e(p['name'])} ({_e(p['id'])})</option>"
        for p in projects
    )
    return (
        f'<form method="get" action="{_e(context.url)}" class="form-inline filter-bar">'
        f'<label class="field">Project <select name="project">{options}</select></label>'
        '<button type="submit" class="button">Show</button></form>'
    )


def _row(*cells: str) -> str:
    """A table row of cells that are already HTML."""
    return "<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>"


def _link(href: str, label: str) -> str:
    return f'<a href="{_e(href)}">{_e(label)}</a>'


def _table(headers: list[str], rows: list[str], empty: str) -> str:
    if not rows:
        return f'<div class="empty"><p class="empty-body">{_e(empty)}</p></div>'
    head = "".join(f'<th scope="col">{_e(h)}</th>' for h in headers)
    return (
        f'<div class="table-wrap"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def _button_form(
    context: Any, project: str, action: str, label: str, danger: bool = False, **fields: Any
) -> str:
    hidden = "".join(
        f'<input type="hidden" name="{_e(k)}" value="{_e(v)}">' for k, v in fields.items()
    )
    style = "button button-small" + (" button-danger" if danger else "")
    confirm = f' data-confirm="{_e(label)}?"' if danger else ""
    target = _e(_url(context.url, project=project))
    return (
        f'<form method="post" action="{target}" class="form-inline"{confirm}>'
        f'{context.csrf_input()}<input type="hidden" name="action" value="{_e(action)}">{hidden}'
        f'<button type="submit" class="{style}">{_e(label)}</button></form>'
    )


# -- webhooks ---------------------------------------------------------------------------


async def render_webhooks(
    request: Any, tessera: KernelSurface, created: dict[str, Any] | None = None
) -> str:
    context = request.state.panel
    service = JobsService(tessera)
    projects, project = await _projects(request, tessera)
    parts = [
        '<p class="lead">Send every write of a collection to a URL, signed with a secret. '
        "Failed deliveries are retried with backoff; the log shows every attempt.</p>",
        _project_picker(context, projects, project),
    ]
    if project is None:
        return "".join(parts)
    if created is not None:
        parts.append(
            '<section class="secret-once" role="status"><h2>Webhook created</h2>'
            "<p><strong>Copy the signing secret now: it is shown only this once.</strong></p>"
            '<div class="secret-row"><code id="webhook-secret" class="secret" data-secret>'
            f'{_e(created["secret"])}</code><button type="button" class="button" '
            'data-copy="#webhook-secret">Copy</button></div></section>'
        )
    hooks = await service.list_webhooks(project, context.principal)
    rows = [
        _row(
            f"<code>{_e(h['url'])}</code>",
            _e(", ".join(h["events"])),
            _link(_url(context.url, project=project, webhook=h["id"]), "Deliveries"),
            _button_form(
                context, project, "delete_webhook", "Delete webhook", True, webhook_id=h["id"]
            ),
        )
        for h in hooks
    ]
    parts.append('<div class="columns"><section class="column-main"><h2>Webhooks</h2>')
    parts.append(
        _table(["URL", "Events", "", ""], rows, "No webhooks yet — add one with the form.")
    )
    selected = request.query_params.get("webhook")
    if selected and selected.isdigit():
        parts.append(await _deliveries(context, service, project, int(selected)))
    parts.append("</section>")
    parts.append(
        '<aside class="column-side"><section class="panel"><h2>New webhook</h2>'
        f'<form method="post" action="{_e(_url(context.url, project=project))}" class="stack">'
        f'{context.csrf_input()}<input type="hidden" name="action" value="create_webhook">'
        '<label class="field">URL <input name="url" type="url" required placeholder="https://example.com/hook"></label>'
        '<label class="field">Events <input name="events" required value="*" '
        'aria-describedby="events-help"></label><p id="events-help" class="help">Comma-separated: '
        "<code>orders.insert</code>, <code>orders.*</code>, <code>*.delete</code>, "
        "<code>*</code>.</p>"
        '<label class="field">Description <input name="description"></label>'
        '<button type="submit" class="button button-primary">Create webhook</button></form>'
        "</section></aside></div>"
    )
    return "".join(parts)


async def _deliveries(context: Any, service: JobsService, project: str, webhook_id: int) -> str:
    page = await service.deliveries(project, webhook_id, context.principal, limit=50)
    rows = []
    for d in page["data"]:
        redeliver = (
            _button_form(
                context,
                project,
                "redeliver",
                "Redeliver",
                webhook_id=webhook_id,
                delivery_id=d["id"],
            )
            if d["status"] in {"failed", "succeeded"}
            else ""
        )
        rows.append(
            f"<tr><td>{_e(d['id'])}</td><td>{_e(d['event'])}</td><td>{_badge(d['status'])}</td>"
            f"<td>{_e(d['attempts'])}</td><td>{_e(d['last_status_code'] or '')}</td>"
            f"<td class='small'>{_e(d['last_error'] or '')}</td>"
            f"<td class='small'>{_e(d['next_attempt_at'] or '')}</td><td>{redeliver}</td></tr>"
        )
    return f"<h3>Deliveries of webhook {webhook_id}</h3>" + _table(
        ["#", "Event", "Status", "Attempts", "Response", "Last error", "Next try", ""],
        rows,
        "No deliveries yet.",
    )


async def handle_webhooks(request: Any, tessera: KernelSurface) -> PanelRedirect | str:
    context = request.state.panel
    form = await request.form()
    project = request.query_params.get("project", "")
    service = JobsService(tessera)
    action = form.get("action")
    back = _url(context.url, project=project)
    if action == "create_webhook":
        events = [part.strip() for part in str(form.get("events", "")).split(",") if part.strip()]
        spec = _parse(
            WebhookSpec,
            {
                "url": form.get("url", ""),
                "events": events,
                "description": form.get("description", ""),
            },
        )
        created = await service.create_webhook(project, spec, context.principal)
        return await render_webhooks(request, tessera, created)
    if action == "delete_webhook":
        await service.delete_webhook(project, int(form["webhook_id"]), context.principal)
        return PanelRedirect(back, "Webhook deleted.")
    if action == "redeliver":
        webhook_id = int(form["webhook_id"])
        await service.redeliver(project, webhook_id, int(form["delivery_id"]), context.principal)
        return PanelRedirect(
            _url(context.url, project=project, webhook=webhook_id), "Queued again."
        )
    raise ValidationFailed("unknown form action", code="unknown_action")


def _parse(model: Any, data: dict[str, Any]) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise ValidationFailed(
            "; ".join(
                f"{'.'.join(str(p) for p in problem['loc'])}: {problem['msg']}"
                for problem in error.errors()
            ),
            code="invalid",
        ) from None


# -- workflows --------------------------------------------------------------------------


def _action_slot(index: int, tessera: KernelSurface) -> str:
    types = "".join(
        f'<option value="{_e(name)}">{_e(cls.label)}</option>'
        for name, cls in tessera.workflow_actions.items()
    )
    return (
        f'<fieldset class="field"><legend>Action {index + 1}</legend>'
        f'<label class="field">Type <select name="action_{index}_type">'
        f'<option value="">—</option>{types}</select></label>'
        f'<label class="field">Options (JSON) <textarea name="action_{index}_options" rows="3" '
        'placeholder=\'{"field": "status", "value": "review"}\'></textarea></label></fieldset>'
    )


def _action_help(tessera: KernelSurface) -> str:
    items = []
    for name, cls in tessera.workflow_actions.items():
        schema = cls.Options.model_json_schema()
        fields = ", ".join(schema.get("properties", {}))
        items.append(
            f"<li><code>{_e(name)}</code> — {_e(cls.label)}; "
            f"options: <code>{_e(fields)}</code></li>"
        )
    return (
        '<details class="help"><summary>Action types and their options</summary><ul>'
        + "".join(items)
        + '</ul><p>Values come as <code>{"value": ...}</code> or <code>{"from": "field"}</code> '
        "(a field of the triggering record).</p></details>"
    )


async def render_workflows(request: Any, tessera: KernelSurface) -> str:
    context = request.state.panel
    service = JobsService(tessera)
    projects, project = await _projects(request, tessera)
    parts = [
        '<p class="lead">When records change, check a condition and run actions — no code. '
        "Every run is logged with its steps.</p>",
        _project_picker(context, projects, project),
    ]
    if project is None:
        return "".join(parts)
    flows = await service.list_workflows(project, context.principal)
    rows = []
    for flow in flows:
        trigger = flow["trigger"]
        toggle = _button_form(
            context,
            project,
            "toggle_workflow",
            "Disable" if flow["active"] else "Enable",
            workflow_id=flow["id"],
            active="false" if flow["active"] else "true",
        )
        when = f"{_e(trigger['collection'])} · {_e(', '.join(trigger['events']))}"
        if trigger.get("condition"):
            when += f"<br><code>{_e(trigger['condition'])}</code>"
        delete = _button_form(
            context, project, "delete_workflow", "Delete workflow", True, workflow_id=flow["id"]
        )
        rows.append(
            _row(
                f"<strong>{_e(flow['name'])}</strong>",
                when,
                _e(", ".join(a["type"] for a in flow["actions"])),
                _badge("active" if flow["active"] else "disabled"),
                _link(_url(context.url, project=project, workflow=flow["id"]), "Runs"),
                toggle + delete,
            )
        )
    parts.append('<div class="columns"><section class="column-main"><h2>Workflows</h2>')
    parts.append(
        _table(
            ["Name", "When", "Actions", "State", "", ""],
            rows,
            "No workflows yet — build one with the form.",
        )
    )
    selected = request.query_params.get("workflow")
    if selected and selected.isdigit():
        parts.append(await _runs(context, service, project, int(selected)))
    parts.append("</section>")
    catalog = await tessera.catalog.get(project)
    live = catalog.live_collections
    collections = "".join(
        f'<option value="{_e(name)}">{_e(name)}</option>' for name in sorted(live)
    )
    condition_menus = {
        name: collection_condition_fields(live[name], tessera.operators, CONDITION_VALUES)
        for name in sorted(live)
    }
    events = "".join(
        f'<label class="choice"><input type="checkbox" name="events" value="{kind}"'
        f"{' checked' if kind == 'insert' else ''}> {kind}</label>"
        for kind in ("insert", "update", "delete")
    )
    slots = "".join(_action_slot(index, tessera) for index in range(ACTION_SLOTS))
    parts.append(
        '<aside class="column-side"><section class="panel"><h2>New workflow</h2>'
        f'<form method="post" action="{_e(_url(context.url, project=project))}" class="stack">'
        f'{context.csrf_input()}<input type="hidden" name="action" value="create_workflow">'
        '<label class="field">Name <input name="name" required></label>'
        '<label class="field">When a record of '
        '<select id="workflow-collection" name="collection" required>'
        f"{collections}</select></label>"
        f'<fieldset class="field"><legend>is</legend><div class="choices">{events}</div></fieldset>'
        '<div class="field"><label for="workflow-condition">and this holds (optional)</label>'
        + condition_builder_html(
            "workflow-condition", "", condition_menus, follow="workflow-collection"
        )
        + '<input id="workflow-condition" name="condition" class="mono" '
        "placeholder=\"amount > 100 and status = 'paid'\"></div>"
        f"{slots}{_action_help(tessera)}"
        '<button type="submit" class="button button-primary">Create workflow</button></form>'
        "</section></aside></div>"
    )
    return "".join(parts)


async def _runs(context: Any, service: JobsService, project: str, workflow_id: int) -> str:
    page = await service.runs(project, workflow_id, context.principal, limit=50)
    rows = []
    for run in page["data"]:
        steps = "; ".join(
            f"{step.get('type')}: {step.get('status')}"
            + (f" ({step['error']})" if step.get("error") else "")
            for step in run["steps"]
        )
        event = run["input"]
        rows.append(
            _row(
                _e(run["id"]),
                f"{_e(event.get('type'))} #{_e(event.get('record_id'))}",
                _badge(run["status"]),
                _e(run["depth"]),
                _e(steps),
                _e(run["error"]),
                _e(run["duration_ms"]),
            )
        )
    return f"<h3>Runs of workflow {workflow_id}</h3>" + _table(
        ["#", "Event", "Status", "Depth", "Steps", "Error", "ms"], rows, "No runs yet."
    )


def _actions_from(form: Any) -> list[dict[str, Any]]:
    actions = []
    for index in range(ACTION_SLOTS):
        kind = str(form.get(f"action_{index}_type") or "")
        if not kind:
            continue
        raw = str(form.get(f"action_{index}_options") or "").strip() or "{}"
        try:
            options = json.loads(raw)
        except json.JSONDecodeError:
            raise ValidationFailed(
                f"action {index + 1}: options are not valid JSON", code="invalid_json"
            ) from None
        actions.append({"type": kind, "options": options})
    return actions


async def handle_workflows(request: Any, tessera: KernelSurface) -> PanelRedirect:
    context = request.state.panel
    form = await request.form()
    project = request.query_params.get("project", "")
    service = JobsService(tessera)
    back = _url(context.url, project=project)
    action = form.get("action")
    if action == "create_workflow":
        spec = _parse(
            WorkflowSpec,
            {
                "name": form.get("name", ""),
                "trigger": {
                    "collection": form.get("collection", ""),
                    "events": form.getlist("events"),
                    "condition": str(form.get("condition") or "").strip() or None,
                },
                "actions": _actions_from(form),
            },
        )
        created = await service.create_workflow(project, spec, context.principal)
        return PanelRedirect(
            _url(context.url, project=project, workflow=created["id"]), "Workflow created."
        )
    if action == "toggle_workflow":
        update = WorkflowUpdate(active=form.get("active") == "true")
        await service.update_workflow(project, int(form["workflow_id"]), update, context.principal)
        return PanelRedirect(back, "Workflow updated.")
    if action == "delete_workflow":
        await service.delete_workflow(project, int(form["workflow_id"]), context.principal)
        return PanelRedirect(back, "Workflow deleted.")
    raise ValidationFailed("unknown form action", code="unknown_action")


PANELS = [
    AdminPanel(
        slug="webhooks", title="Webhooks", render=render_webhooks, handle=handle_webhooks, order=20
    ),
    AdminPanel(
        slug="workflows",
        title="Workflows",
        render=render_workflows,
        handle=handle_workflows,
        order=21,
    ),
]
