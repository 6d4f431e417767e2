"""``GET /api/plugins``: what is running, from which distribution, implementing which hooks."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from kernel.api.deps import TesseraDep
from kernel.api.responses import Listing, Shape, json_response

router = APIRouter(prefix="/api/plugins", tags=["plugins"])


class Plugin(Shape):
    name: str
    version: str | None
    distribution: str | None
    description: str | None
    kinds: list[str]
    hooks: list[str]
    requires: Any


@router.get("", summary="Enabled plugins", response_model=Listing[Plugin])
async def list_plugins(tessera: TesseraDep) -> Response:
    return json_response({"data": tessera.describe_plugins()})
