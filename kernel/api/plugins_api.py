"""``GET /api/plugins``: what is running, from which distribution, implementing which hooks."""

from __future__ import annotations

from fastapi import APIRouter, Response

from kernel.api.deps import TesseraDep
from kernel.api.responses import json_response

router = APIRouter(prefix="/api/plugins", tags=["plugins"])


@router.get("", summary="Enabled plugins")
async def list_plugins(tessera: TesseraDep) -> Response:
    return json_response({"data": tessera.describe_plugins()})
