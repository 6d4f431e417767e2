"""``TransportContract``: the tests every realtime transport passes.

A transport author subclasses it in their tests, provides a ``realtime`` fixture (a
running Tessera with their transport enabled, reachable over real HTTP) and implements
:meth:`TransportContract.connect` (open a client connection, the way a browser would)::

    class TestMyTransport(TransportContract):
        @pytest.fixture
        def realtime(self) -> RealtimeServer: ...

        def connect(self, realtime, request: Connect): ...  # an async context manager

The tests are coroutines: run them with pytest-asyncio (``asyncio_mode = "auto"``, or
mark the subclass ``pytest.mark.asyncio``). Each test makes its own project through the
REST API, so the server may be shared by the whole module.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

import httpx

from kernel.runtime import Tessera

PREFIX = "/api/projects/{project_id}/realtime"
#: Seconds a test waits for one event before failing.
WAIT = 10.0
EVENT_KEYS = {"type", "collection", "id", "changed_fields", "ts", "cursor"}


@dataclass
class RealtimeServer:
    """What the ``realtime`` fixture gives: the running kernel, a client for the REST API
    of the same server, an admin's headers, and the name of the transport under test."""

    tessera: Tessera
    client: httpx.AsyncClient
    admin_headers: dict[str, str]
    transport: str


@dataclass(frozen=True)
class Connect:
    """A connection the contract opens: watch ``collection`` of ``project_id`` with
    ``headers`` (credentials), resuming after ``cursor`` when it is set."""

    project_id: str
    collection: str
    headers: dict[str, str]
    cursor: str | None = None


class Refused(Exception):
    """Raised by ``connect`` when the transport turns the connection down."""

    def __init__(self, status: int, detail: str = "") -> None:
        super().__init__(f"refused with {status}: {detail}")
        self.status = status


class TransportContract:
    """Subclass, provide the ``realtime`` fixture and implement :meth:`connect`."""

    def connect(
        self, realtime: RealtimeServer, request: Connect
    ) -> AbstractAsyncContextManager[AsyncIterator[dict[str, Any]]]:
        """Subscribe as ``request`` says.

        The context manager enters once the subscription is live (an event committed
        afterwards must arrive), yields the received events (API.md, Realtime) and
        disconnects on exit; it raises :class:`Refused` with the HTTP status when the
        transport refuses the connection."""
        raise NotImplementedError

    # -- the contract -------------------------------------------------------------------

    async def test_transport_mounts_under_the_project_realtime_path(
        self, realtime: RealtimeServer
    ) -> None:
        transport = realtime.tessera.transports[realtime.transport]
        paths = [route.path for route in transport(realtime.tessera).router().routes]
        assert paths, "the transport's router has no route"
        assert all(path.startswith(PREFIX) for path in paths), paths

    async def test_anonymous_caller_is_refused_where_only_admins_read(
        self, realtime: RealtimeServer
    ) -> None:
        project = await _project(realtime, list=None, read=None)
        try:
            async with self.connect(realtime, Connect(project, "notes", {})):
                raise AssertionError("an anonymous caller was let in")
        except Refused as refused:
            assert refused.status in (401, 403)

    async def test_key_without_the_realtime_scope_is_refused(
        self, realtime: RealtimeServer
    ) -> None:
        project = await _project(realtime, list="", read="")
        key = await _key(realtime, project, ["records:read"])
        try:
            async with self.connect(realtime, Connect(project, "notes", key)):
                raise AssertionError("a key without the realtime scope was let in")
        except Refused as refused:
            assert refused.status == 403

    async def test_event_written_after_connecting_is_delivered(
        self, realtime: RealtimeServer
    ) -> None:
        project = await _project(realtime, list="", read="")
        key = await _key(realtime, project, ["realtime"])
        async with self.connect(realtime, Connect(project, "notes", key)) as events:
            record = await _create(realtime, project, "hello")
            event = await _next(events)
        assert set(event) == EVENT_KEYS
        assert (event["type"], event["collection"], event["id"]) == (
            "insert",
            "notes",
            record["id"],
        )

    async def test_reconnecting_with_a_cursor_resumes_without_gap_or_duplicate(
        self, realtime: RealtimeServer
    ) -> None:
        project = await _project(realtime, list="", read="")
        first = Connect(project, "notes", realtime.admin_headers)
        async with self.connect(realtime, first) as events:
            await _create(realtime, project, "seen")
            cursor = (await _next(events))["cursor"]
        missed = [(await _create(realtime, project, title))["id"] for title in ("m1", "m2")]
        resume = Connect(project, "notes", realtime.admin_headers, cursor)
        async with self.connect(realtime, resume) as events:
            assert [(await _next(events))["id"] for _ in missed] == missed
            live = await _create(realtime, project, "live")
            assert (await _next(events))["id"] == live["id"]


async def _next(events: AsyncIterator[dict[str, Any]]) -> dict[str, Any]:
    async with asyncio.timeout(WAIT):
        return await anext(events)


async def _call(realtime: RealtimeServer, method: str, path: str, **kwargs: Any) -> Any:
    response = await realtime.client.request(method, path, headers=realtime.admin_headers, **kwargs)
    assert response.is_success, response.text
    return response.json()


async def _project(realtime: RealtimeServer, **policies: str | None) -> str:
    """A new project with a collection ``notes`` under ``policies``."""
    project = f"rt{secrets.token_hex(5)}"
    await _call(realtime, "POST", "/api/projects", json={"id": project, "name": project})
    base = f"/api/projects/{project}/collections"
    fields = [{"name": "title", "type": "string"}]
    await _call(realtime, "POST", base, json={"name": "notes", "fields": fields})
    await _call(realtime, "PUT", f"{base}/notes/policies", json=policies)
    return project


async def _key(realtime: RealtimeServer, project: str, scopes: list[str]) -> dict[str, str]:
    created = await _call(
        realtime,
        "POST",
        f"/api/projects/{project}/api-keys",
        json={"name": "contract", "scopes": scopes},
    )
    return {"X-API-Key": created["key"]}


async def _create(realtime: RealtimeServer, project: str, title: str) -> dict[str, Any]:
    path = f"/api/projects/{project}/collections/notes/records"
    return await _call(realtime, "POST", path, json={"title": title})
