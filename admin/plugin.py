"""The plugin ``admin``: the admin UI, served by the same process at ``/admin``.

It goes through the same plugin path as every other capability: ``register_routes`` returns
one router (kept out of ``/openapi.json``), and every page calls the kernel's services with
the signed-in admin's :class:`~kernel.Principal`, so the REST API's permission checks apply.
"""

from __future__ import annotations

from fastapi import APIRouter

from admin.app import build_router
from kernel import PluginInfo, hookimpl
from kernel.runtime import Tessera


@hookimpl
def plugin_info() -> PluginInfo:
    return PluginInfo(description="The admin UI at /admin")


@hookimpl
def register_routes(tessera: Tessera) -> list[APIRouter]:
    return [build_router(tessera)]
