"""Logs of a project: schema operations (status, transitions, DDL, errors) and audit
events, each filterable and paginated."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from starlette.requests import Request
from starlette.responses import Response

from admin import history, urls
from admin.forms import FormErrors
from admin.paging import page_links
from admin.rendering import render
from admin.routing import admin_router
from admin.session import SessionDep
from admin.site import SiteDep
from admin.views.lookup import load_project
from kernel import TesseraError

router = admin_router()

STATUSES = ("pending", "running", "applied", "failed")


@router.get("/p/{project_id}/logs")
async def schema_log(
    project_id: str, request: Request, site: SiteDep, session: SessionDep
) -> Response:
    view = await load_project(site, session, project_id)
    params = request.query_params
    filters = {key: params.get(key, "") for key in ("status", "op")}
    cursor, trail = params.get("cursor", ""), params.getlist("trail")
    errors = FormErrors()
    page: dict = {"data": [], "page": {"next_cursor": None}}
    try:
        page = await history.schema_ops(
            site.tessera, session.principal, project_id, cursor=cursor, **filters
        )
    except TesseraError as error:
        errors = FormErrors.from_error(error)
    kept = [(key, value) for key, value in filters.items() if value]
    return render(
        request,
        "logs_schema.html",
        project=view.project,
        ops=page["data"],
        filters=filters,
        statuses=STATUSES,
        op_names=sorted(site.tessera.ddl_operations),
        pages=page_links(
            urls.project(project_id, "logs"), kept, cursor, trail, page["page"]["next_cursor"]
        ),
        errors=errors,
    )


def _day(text: str, *, end: bool = False) -> datetime | None:
    """A ``YYYY-MM-DD`` input as the start of that day in UTC (the end: the next day's)."""
    try:
        day = date.fromisoformat(text)
    except ValueError:
        return None
    return datetime.combine(day + timedelta(days=1 if end else 0), time(), tzinfo=UTC)


@router.get("/p/{project_id}/logs/audit")
async def audit_log(
    project_id: str, request: Request, site: SiteDep, session: SessionDep
) -> Response:
    view = await load_project(site, session, project_id)
    params = request.query_params
    filters = {
        key: params.get(key, "") for key in ("action", "target_type", "target", "since", "until")
    }
    cursor, trail = params.get("cursor", ""), params.getlist("trail")
    errors = FormErrors()
    page: dict = {"data": [], "page": {"next_cursor": None}}
    try:
        page = await history.audit_events(
            site.tessera,
            session.principal,
            project_id,
            action=filters["action"],
            target_type=filters["target_type"],
            target=filters["target"],
            since=_day(filters["since"]),
            until=_day(filters["until"], end=True),
            cursor=cursor,
        )
    except TesseraError as error:
        errors = FormErrors.from_error(error)
    kept = [(key, value) for key, value in filters.items() if value]
    return render(
        request,
        "logs_audit.html",
        project=view.project,
        events=page["data"],
        filters=filters,
        pages=page_links(
            urls.project(project_id, "logs", "audit"),
            kept,
            cursor,
            trail,
            page["page"]["next_cursor"],
        ),
        errors=errors,
    )
