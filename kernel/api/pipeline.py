"""The request pipeline: one ordered list of steps around every HTTP request.

Both the records fast path and FastAPI's routes (and ``/admin``, ``/docs``, ``/metrics``)
are served from inside :class:`Pipeline`, so a cross-cutting concern is written once, as a
:class:`~kernel.api.exchange.RequestStep` in :func:`request_steps`, and no route can miss
it. The order, outermost first, and why:

1. :class:`~kernel.api.request_id.RequestId`: first, so every later step's log records
   and every answer, refusals included, carry the id.
2. :class:`~kernel.api.metrics.Metrics`: counts every answer, refusals included.
3. :class:`~kernel.api.cors.Cors`: answers preflights before credentials are asked for
   (a preflight carries none) and makes every answer readable by an allowed origin, so a
   browser script can read a 401's or 429's body.
4. :class:`~kernel.api.guards.BodyLimit`: refuses an oversized body before any work.
5. :class:`~kernel.api.guards.Authenticate`: the caller, resolved once for the route.
6. :class:`~kernel.api.sanitize.Sanitize`: what PostgreSQL cannot store, refused in the
   path, query string and JSON body; after authentication, so that a caller the route
   would refuse hears that first; before the quota check, which reads the project id.
7. :class:`~kernel.api.guards.QuotaCheck`: quota plugins' ``check_request`` on project
   routes, with the caller.

A step's error (a :class:`~kernel.errors.TesseraError`) becomes the API.md error body, with
the headers the earlier steps added, whichever route the request was for.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import Receive, Scope, Send

from kernel.api.cors import Cors
from kernel.api.errors import client_error, error_response, unexpected_error
from kernel.api.exchange import Exchange, RequestStep
from kernel.api.guards import Authenticate, BodyLimit, QuotaCheck
from kernel.api.metrics import Metrics
from kernel.api.request_id import RequestId
from kernel.api.sanitize import Sanitize
from kernel.json_values import JsonLimits

if TYPE_CHECKING:
    from kernel.api.fastpath import FastPath
    from kernel.config import Settings
    from kernel.runtime import Tessera


def request_steps(
    settings: Settings,
    tessera: Tessera,
    records: FastPath,
    app_routes: Sequence[BaseRoute],
    routes: Sequence[BaseRoute],
) -> list[RequestStep]:
    """Every request step, in the order they run (the module docstring says why), for an
    app whose fast path is ``records``, whose router holds ``app_routes``, built
    from the routers whose routes are ``routes``.

    A step that can do nothing in this deployment is left out rather than asked on every
    request: CORS without ``cors_origins``, the quota check without a quota policy."""
    steps: list[RequestStep | None] = [
        RequestId(),
        Metrics(),
        Cors(settings.cors_origins, settings.cors_max_age) if settings.cors_origins else None,
        BodyLimit(settings.max_body_bytes),
        Authenticate(tessera),
        Sanitize(JsonLimits.of(settings), app_routes, routes),
        QuotaCheck(tessera) if len(tessera.quota_policy_classes) else None,
    ]
    return [step for step in steps if step is not None]


def _overrides(step: RequestStep, method: str) -> bool:
    return getattr(type(step), method) is not getattr(RequestStep, method)


class Pipeline:
    """Runs ``steps`` around ``app`` for each HTTP request (other scopes are not its business).

    ``fast_route(scope)`` is the fast path's match for a request (None when FastAPI
    serves it): asked once per request, before the steps, so a step and the app read it
    from the :class:`Exchange` instead of matching again. ``app(exchange)`` serves a request
    the steps let through. The steps' bound methods are looked up once, here; per request
    the pipeline makes one :class:`Exchange` and calls only the methods a step overrides.
    """

    def __init__(
        self,
        steps: list[RequestStep],
        app: Callable[[Exchange], Awaitable[None]],
        fast_route: Callable[[Scope], Any],
        settings: Settings,
    ) -> None:
        self.app = app
        self.fast_route = fast_route
        self.settings = settings
        self._enters = tuple(step.enter for step in steps if _overrides(step, "enter"))
        self._finishes = tuple(
            step.finish for step in reversed(steps) if _overrides(step, "finish")
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        exchange = Exchange(scope, receive, send, self.fast_route(scope))
        try:
            try:
                for enter in self._enters:
                    answer = enter(exchange)
                    if answer is not None:
                        if not isinstance(answer, Response):
                            answer = await answer
                            if answer is None:
                                continue
                        await answer(scope, exchange.receive, exchange.send)
                        return
            except Exception as error:
                known = client_error(error, self.settings)
                if known is not None:
                    answer = error_response(known)
                else:
                    answer = await unexpected_error(Request(scope), error)
                await answer(scope, receive, exchange.send)
                return
            await self.app(exchange)
        finally:
            for finish in self._finishes:
                finish(exchange)
