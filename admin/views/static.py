"""``/admin/static/<name>``: the admin's CSS and JavaScript (no sign-in needed)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from admin.routing import admin_router
from admin.static_files import FILES
from kernel import NotFound

router = admin_router()


@router.get("/static/{name}")
async def static_file(name: str, request: Request) -> Response:
    found = FILES.get(name)
    if found is None:
        raise NotFound(f"No static file {name!r}.")
    return Response(
        found.content,
        media_type=found.media_type,
        headers={"Cache-Control": "public, max-age=31536000, immutable", "ETag": found.digest},
    )
