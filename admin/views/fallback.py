"""A page for admin addresses that name nothing (instead of the API's JSON 404); a
signed-in admin sees it with the usual header (their account, the navigation)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from admin.rendering import error_page
from admin.routing import admin_router
from admin.session import optional_session

router = admin_router()


@router.get("/{rest:path}")
async def not_found(rest: str, request: Request) -> Response:
    await optional_session(request)  # sets request.state.session for the page's header
    return error_page(request, 404, "Page not found", ["This address does not name a page."])
