"""``@hot_route``: a plugin's route served by the fast path (:mod:`kernel.api.fastpath`).

A route a client calls on every page view (a saved view's run, a public read) pays FastAPI's
route matching and dependency solving on each request. Marking its endpoint puts it on the
fast path the records routes take; FastAPI still describes it in ``/openapi.json`` and
answers the same way. The app refuses at load, with a :class:`~kernel.errors.PluginError`,
a marked route the fast path could not serve exactly as FastAPI would (docs/plugins.md,
``register_routes``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])

_MARK = "__tessera_hot_route__"


def hot_route(endpoint: Endpoint) -> Endpoint:
    """Mark ``endpoint`` (a route's function, under ``@router.get(...)``) for the fast path.

    The endpoint is async, returns a :class:`starlette.responses.Response`, and takes only
    what the fast path supplies: ``Request``, ``TesseraDep``, ``PrincipalDep``, ``JsonBody``
    and ``str`` path parameters (not ``:path``); its router may depend on ``SignedIn``. It
    reads query parameters itself, from ``request.query_params``. Returns ``endpoint``.
    """
    setattr(endpoint, _MARK, True)
    return endpoint


def is_hot_route(endpoint: Callable[..., Any]) -> bool:
    """Whether ``endpoint`` was marked with :func:`hot_route`."""
    return getattr(endpoint, _MARK, False) is True
