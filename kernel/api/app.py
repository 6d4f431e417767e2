"""``create_app(settings)``: the FastAPI application of one process.

Plugins are loaded (and their routers included) when the app is created, so a broken
plugin stops startup before anything is served; the database and bus connect in the
lifespan. No module-level state: every app has its own plugin manager and kernel.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI
from starlette.types import Receive, Scope, Send

from kernel.api import (
    audit,
    auth,
    collections,
    docs_ui,
    health,
    plugins_api,
    project_openapi,
    projects,
    records,
    schema,
)
from kernel.api.errors import install_error_handlers
from kernel.api.exchange import Exchange
from kernel.api.fastpath import FastPath, hot_routes, records_routes
from kernel.api.openapi import complete_document
from kernel.api.pipeline import Pipeline, request_steps
from kernel.api.request_id import install_log_record_factory
from kernel.api.responses import JSONResponse
from kernel.api.route_index import RouteIndex
from kernel.config import Settings, load_settings
from kernel.errors import PluginError
from kernel.runtime import Tessera

KERNEL_ROUTERS = (
    health.router,
    plugins_api.router,
    auth.router,
    projects.router,
    collections.router,
    schema.router,
    records.router,
    audit.router,
    project_openapi.router,
    docs_ui.router,
)


class TesseraApp(FastAPI):
    """FastAPI inside the request pipeline, with the fast path asked first.

    Every HTTP request passes ``pipeline`` (:mod:`kernel.api.pipeline`); inside it, records
    requests and plugins' hot routes are answered by ``fast_path``
    (:mod:`kernel.api.fastpath`) without entering FastAPI's middleware stack and router,
    and every other request goes through FastAPI as usual. Other kinds of scope (lifespan,
    websocket) go straight to FastAPI.
    """

    fast_path: FastPath
    pipeline: Pipeline

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self.pipeline(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)

    def dispatch(self, exchange: Exchange) -> Awaitable[None]:
        """Serve an HTTP request the pipeline let through (a plain method returning the
        route's coroutine: no frame of its own on the hot path)."""
        scope = exchange.scope
        matched = exchange.fast_route
        if matched is None:
            return super().__call__(scope, exchange.receive, exchange.send)
        scope["app"] = self
        return self.fast_path.serve(*matched, exchange)

    def openapi(self) -> dict[str, Any]:
        """FastAPI's document, completed with the errors the pipeline and the error
        handlers give every route (:mod:`kernel.api.openapi`); built on first use, after
        start, once the quota policies are known."""
        if self.openapi_schema is None:
            quotas = bool(self.state.tessera.quota_policies)
            self.openapi_schema = complete_document(super().openapi(), self.routes, quotas=quotas)
        return self.openapi_schema


def _settle_garbage_collector() -> None:
    """For a long-lived server process, once started: what exists now (modules, the app,
    plugins, the catalog) lives as long as the process, so move it out of the collector's
    sight (``gc.freeze``) and collect the youngest generation less often. Requests allocate
    many short-lived objects; without this, full collections rescan the whole app."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 20, 100)


def create_app(settings: Settings, *, server_process: bool = False) -> TesseraApp:
    """Build the app for ``settings``; raises :class:`PluginError` on a plugin problem.

    ``server_process``: the app is the whole process's (``tessera serve``), so startup
    also tunes the garbage collector for serving; never for an app among others (tests).
    """
    tessera = Tessera.build(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await tessera.start()
        if server_process:
            _settle_garbage_collector()
        try:
            yield
        finally:
            await tessera.stop()

    app = TesseraApp(
        title="Tessera",
        version="0.1.0",
        description="A no-code backend on PostgreSQL. Error bodies: "
        '{"errors": [{"field", "code", "message"}]}.',
        lifespan=lifespan,
        default_response_class=JSONResponse,
        docs_url=None,  # served from installed assets by kernel.api.docs_ui
        redoc_url=None,
    )
    app.state.tessera = tessera
    install_error_handlers(app)
    included = [*KERNEL_ROUTERS]
    included += [transport(tessera).router() for _, transport in tessera.transports.items()]
    fast_routes = records_routes(records.router.routes)
    for plugin_name, routers in tessera.plugins.call_each("register_routes", tessera=tessera):
        for router in routers or ():
            if not isinstance(router, APIRouter):
                raise PluginError(f"plugin {plugin_name}: register_routes returned {router!r}")
            earlier = [route for declared in included for route in declared.routes]
            fast_routes += hot_routes(tessera, plugin_name, router.routes, earlier)
            included.append(router)
    for router in included:
        app.include_router(router)
    # The routes are final: FastAPI's router now tries only those that could match a
    # request's path (kernel.api.route_index), not all of them in turn.
    app.router.middleware_stack = RouteIndex(app.router)
    app.fast_path = FastPath(tessera, fast_routes)
    # The routes as declared: included with no prefix or dependencies added, each matches
    # the paths it serves (FastAPI's router may hold them wrapped).
    routes = [route for router in included for route in router.routes]
    steps = request_steps(settings, tessera, app.fast_path, app.router.routes, routes)
    app.pipeline = Pipeline(steps, app.dispatch, app.fast_path.match, settings)
    install_log_record_factory()
    return app


def create_app_from_environment() -> TesseraApp:
    """Factory for ``uvicorn --factory`` and ``tessera serve`` workers."""
    return create_app(load_settings(), server_process=True)
