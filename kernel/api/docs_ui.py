"""``/docs``: Swagger UI, served from the installed ``swagger-ui-bundle-v2`` package, so the
page works on a machine without internet (FastAPI's own ``/docs`` loads it from a CDN).

``/docs`` shows the platform's ``/openapi.json``; ``/docs?url=/path/to/openapi.json`` shows
another document of this server (a project's, for instance). Only a same-origin path is
accepted: the page never loads a document, or runs code, from elsewhere.
"""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import APIRouter, Query
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.responses import FileResponse, Response
from swagger_ui_bundle import swagger_ui_path

from kernel.errors import BadRequest, NotFound

ASSETS = Path(swagger_ui_path)
#: The files the page loads; nothing else of the package is served.
SERVED_ASSETS = frozenset({"swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"})
#: A path on this server: no scheme, no host, nothing that could end the page's string.
SAME_ORIGIN_PATH = re.compile(r"/(?!/)[A-Za-z0-9_\-./]*")

router = APIRouter(include_in_schema=False)


@router.get("/docs")
async def swagger_ui(url: str = Query(default="/openapi.json", max_length=500)) -> Response:
    if not SAME_ORIGIN_PATH.fullmatch(url):
        raise BadRequest("url must be a path on this server", code="invalid_url", field="url")
    return get_swagger_ui_html(
        openapi_url=url,
        title="Tessera API",
        swagger_js_url="/docs/assets/swagger-ui-bundle.js",
        swagger_css_url="/docs/assets/swagger-ui.css",
        swagger_favicon_url="/docs/assets/favicon-32x32.png",
    )


@router.get("/docs/assets/{name}")
async def swagger_ui_asset(name: str) -> Response:
    if name not in SERVED_ASSETS:
        raise NotFound(f"no asset {name!r}", code="not_found")
    return FileResponse(ASSETS / name, headers={"Cache-Control": "public, max-age=86400"})
