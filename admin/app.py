"""``build_router(tessera)``: the admin's one router, mounted at ``/admin``."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from starlette.requests import Request

from admin.routing import AdminRoute
from admin.site import AdminSite
from admin.views import (
    admins,
    auth,
    collections,
    fallback,
    keys,
    logs,
    picker,
    plugins,
    policies,
    projects,
    records,
    rules,
    schema_ops,
    static,
)
from kernel.runtime import Tessera

#: In match order: the catch-all 404 page comes last.
VIEWS = (
    static,
    auth,
    projects,
    collections,
    records,
    picker,
    policies,
    rules,
    keys,
    logs,
    schema_ops,
    plugins,
    admins,
    fallback,
)


def build_router(tessera: Tessera) -> APIRouter:
    """Every admin page for ``tessera``; raises ``PluginError`` for a bad plugin panel.

    The router's first dependency hands each request the :class:`AdminSite` (kernel, panels,
    keys); the router stays out of ``/openapi.json``, which documents the API only.
    """
    site = AdminSite.build(tessera)

    def attach_site(request: Request) -> None:
        request.state.admin = site

    router = APIRouter(
        prefix="/admin",
        include_in_schema=False,
        route_class=AdminRoute,
        dependencies=[Depends(attach_site)],
    )
    router.add_api_route("", auth.home, methods=["GET"])
    for view in VIEWS:
        router.include_router(view.router)
    return router
