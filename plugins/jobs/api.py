"""Routes: ``/api/projects/{p}/webhooks`` and ``/api/projects/{p}/workflows`` (API.md,
"Jobs, webhooks, workflows"), thin over :class:`JobsService`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query, Response

from kernel.api.deps import PrincipalDep, SignedIn, TesseraDep
from kernel.api.responses import Listing, Page, Shape, error_responses, json_response
from plugins.jobs.service import (
    DeliveryStatus,
    JobsService,
    RunStatus,
    WebhookSpec,
    WorkflowSpec,
    WorkflowUpdate,
)

router = APIRouter(prefix="/api/projects/{project_id}", tags=["jobs"], dependencies=[SignedIn])


class Webhook(Shape):
    """A webhook as listed: never its secret."""

    id: int
    url: str
    events: list[str]
    description: str
    active: bool
    created_by: dict[str, Any]
    created_at: datetime


class NewWebhook(Webhook):
    """A webhook just created: with the secret its deliveries are signed with, shown once."""

    secret: str


class Delivery(Shape):
    id: int
    event_id: int
    event: str
    status: DeliveryStatus
    attempts: int
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: datetime | None
    created_at: datetime
    delivered_at: datetime | None


class Workflow(Shape):
    id: int
    name: str
    trigger: dict[str, Any]
    actions: list[dict[str, Any]]
    active: bool
    created_by: dict[str, Any]
    created_at: datetime


class Run(Shape):
    id: int
    event_id: int | None
    status: RunStatus
    depth: int
    attempts: int
    input: Any
    steps: Any
    error: str | None
    started_at: datetime | None
    finished_at: datetime | None
    duration_ms: int | None


@router.post(
    "/webhooks",
    status_code=201,
    summary="Subscribe a URL to events (secret shown once)",
    response_model=NewWebhook,
)
async def create_webhook(
    project_id: str, body: WebhookSpec, tessera: TesseraDep, principal: PrincipalDep
) -> Response:
    return json_response(
        await JobsService(tessera).create_webhook(project_id, body, principal), 201
    )


@router.get(
    "/webhooks", summary="Webhooks of the project (no secrets)", response_model=Listing[Webhook]
)
async def list_webhooks(project_id: str, tessera: TesseraDep, principal: PrincipalDep) -> Response:
    return json_response({"data": await JobsService(tessera).list_webhooks(project_id, principal)})


@router.delete("/webhooks/{webhook_id}", status_code=204, summary="Delete a webhook")
async def delete_webhook(
    project_id: str, webhook_id: int, tessera: TesseraDep, principal: PrincipalDep
) -> Response:
    await JobsService(tessera).delete_webhook(project_id, webhook_id, principal)
    return Response(status_code=204)


@router.get(
    "/webhooks/{webhook_id}/deliveries",
    summary="Delivery log, newest first",
    response_model=Page[Delivery],
)
async def list_deliveries(
    project_id: str,
    webhook_id: int,
    tessera: TesseraDep,
    principal: PrincipalDep,
    status: DeliveryStatus | None = None,
    limit: int = Query(default=50, ge=1, le=200),
    cursor: str | None = None,
) -> Response:
    page = await JobsService(tessera).deliveries(
        project_id, webhook_id, principal, status, limit, cursor
    )
    return json_response(page)


@router.post(
    "/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver",
    status_code=202,
    summary="Send a delivery again (attempts start over)",
    response_model=Delivery,
    responses=error_responses(409),
)
async def redeliver(
    project_id: str, webhook_id: int, delivery_id: int, tessera: TesseraDep, principal: PrincipalDep
) -> Response:
    delivery = await JobsService(tessera).redeliver(project_id, webhook_id, delivery_id, principal)
    return json_response(delivery, 202)


@router.post(
    "/workflows",
    status_code=201,
    summary="Create a workflow",
    response_model=Workflow,
    responses=error_responses(409),
)
async def create_workflow(
    project_id: str, body: WorkflowSpec, tessera: TesseraDep, principal: PrincipalDep
) -> Response:
    return json_response(
        await JobsService(tessera).create_workflow(project_id, body, principal), 201
    )


@router.get("/workflows", summary="Workflows of the project", response_model=Listing[Workflow])
async def list_workflows(project_id: str, tessera: TesseraDep, principal: PrincipalDep) -> Response:
    return json_response({"data": await JobsService(tessera).list_workflows(project_id, principal)})


@router.get("/workflows/{workflow_id}", summary="One workflow", response_model=Workflow)
async def get_workflow(
    project_id: str, workflow_id: int, tessera: TesseraDep, principal: PrincipalDep
) -> Response:
    return json_response(
        await JobsService(tessera).get_workflow(project_id, workflow_id, principal)
    )


@router.patch(
    "/workflows/{workflow_id}",
    summary="Rename, enable or disable a workflow",
    response_model=Workflow,
    responses=error_responses(409),
)
async def update_workflow(
    project_id: str,
    workflow_id: int,
    body: WorkflowUpdate,
    tessera: TesseraDep,
    principal: PrincipalDep,
) -> Response:
    updated = await JobsService(tessera).update_workflow(project_id, workflow_id, body, principal)
    return json_response(updated)


@router.delete("/workflows/{workflow_id}", status_code=204, summary="Delete a workflow")
async def delete_workflow(
    project_id: str, workflow_id: int, tessera: TesseraDep, principal: PrincipalDep
) -> Response:
    await JobsService(tessera).delete_workflow(project_id, workflow_id, principal)
    return Response(status_code=204)


@router.get(
    "/workflows/{workflow_id}/runs", summary="Run log, newest first", response_model=Page[Run]
)
async def list_runs(
    project_id: str,
    workflow_id: int,
    tessera: TesseraDep,
    principal: PrincipalDep,
    status: RunStatus | None = None,
    limit: int = Query(default=50, ge=1, le=200),
    cursor: str | None = None,
) -> Response:
    page = await JobsService(tessera).runs(
        project_id, workflow_id, principal, status, limit, cursor
    )
    return json_response(page)
