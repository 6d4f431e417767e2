"""A page for admin addresses that name nothing (instead of the API's JSON 404)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from admin.rendering import error_page
from admin.routing import admin_router

router = admin_router()


@router.get("/{rest:path}")
async def not_found(rest: str, request: Request) -> Response:
    return error_page(request, 404, "Page not found", ["This address does not name a page."])
