"""``GET /api/plugins``: what is running, from which distribution, implementing which hooks."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from kernel.api.deps import TesseraDep
from kernel.api.responses import json_response
from kernel.plugins import PluginSet

router = APIRouter(prefix="/api/plugins", tags=["plugins"])


def describe_plugins(plugins: PluginSet, registries: dict[str, Any]) -> list[dict[str, Any]]:
    """Each enabled plugin with the kinds of things it registered."""
    described = []
    for plugin in plugins:
        kinds = sorted(
            kind
            for kind, registry in registries.items()
            if any(registry.owner(name) == plugin.name for name in registry)
        )
        described.append(
            {
                "name": plugin.name,
                "version": plugin.version,
                "distribution": plugin.distribution,
                "description": plugin.info.description,
                "kinds": kinds,
                "hooks": plugins.hooks_of(plugin.name),
                "requires": plugin.info.requires,
            }
        )
    return described


@router.get("", summary="Enabled plugins")
async def list_plugins(tessera: TesseraDep) -> Response:
    return json_response({"data": describe_plugins(tessera.plugins, tessera.registries())})
