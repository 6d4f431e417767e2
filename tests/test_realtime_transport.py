"""The transport contract, run against a minimal SSE transport over real HTTP.

No transport plugin ships yet; this one lives here, is installed as a throwaway plugin
distribution and served by uvicorn on 127.0.0.1, so the contract (and the subscription
service under it) is exercised the way a browser would use it.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

import httpx
import orjson
import pytest
import uvicorn
from fastapi import APIRouter, Header
from fastapi.responses import StreamingResponse

from kernel import Subscription, SubscriptionClosed, Transport
from kernel.api.app import create_app
from kernel.api.deps import PrincipalDep
from kernel.config import Settings
from kernel.testing.transport import Connect, RealtimeServer, Refused, TransportContract
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.fake_plugins import FakeDistributions

PLUGIN = """
from kernel import hookimpl
from tests.test_realtime_transport import SseTestTransport

@hookimpl
def register_transports():
    return [SseTestTransport]
"""


class SseTestTransport(Transport):
    """``GET .../realtime/collections/{collection}`` as Server-Sent Events (API.md)."""

    name = "sse-test"

    def router(self) -> APIRouter:
        router = APIRouter(prefix="/api/projects/{project_id}/realtime", tags=["realtime"])
        subscriptions = self.tessera.subscriptions

        @router.get("/collections/{collection}")
        async def stream(
            project_id: str,
            collection: str,
            principal: PrincipalDep,
            cursor: str | None = None,
            last_event_id: Annotated[str | None, Header()] = None,
        ) -> StreamingResponse:
            subscription = subscriptions.open(
                principal, project_id, collections=[collection], cursor=last_event_id or cursor
            )
            await subscription.start()  # refusals become 4xx before the stream starts
            return StreamingResponse(sse(subscription), media_type="text/event-stream")

        return router


async def sse(subscription: Subscription) -> AsyncIterator[bytes]:
    try:
        async for event in subscription:
            yield b"id: " + event["cursor"].encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n"
    except SubscriptionClosed as closed:
        yield b"event: error\ndata: " + orjson.dumps(closed.body()) + b"\n\n"
    finally:
        subscription.close()


async def sse_events(response: httpx.Response) -> AsyncIterator[dict[str, Any]]:
    """The ``data`` of each message of an SSE response (errors raise)."""
    kind, data = "message", ""
    async for line in response.aiter_lines():
        if line.startswith("event: "):
            kind = line.removeprefix("event: ")
        elif line.startswith("data: "):
            data += line.removeprefix("data: ")
        elif not line and data:
            if kind == "error":
                raise AssertionError(f"the stream ended with an error: {data}")
            yield orjson.loads(data)
            kind, data = "message", ""


@pytest.fixture(scope="module")
async def realtime(
    make_settings: Callable[..., Settings], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[RealtimeServer]:
    distributions = FakeDistributions(Path(tmp_path_factory.mktemp("sse")) / "site")
    distributions.root.mkdir()
    distributions.add("tests-sse", {"tests.sse": "tests_sse_plugin"}, {"tests_sse_plugin": PLUGIN})
    distributions.activate()
    try:
        app = create_app(make_settings())
    finally:
        distributions.deactivate()
    listener = socket.create_server(("127.0.0.1", 0))
    # Connections wait in the listen backlog until uvicorn has started the app.
    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve(sockets=[listener]))
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    try:
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            login = await client.post(
                "/api/admin/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
            )
            assert login.status_code == 200, login.text
            yield RealtimeServer(
                tessera=app.state.tessera,
                client=client,
                admin_headers={"Authorization": f"Bearer {login.json()['token']}"},
                transport=SseTestTransport.name,
            )
    finally:
        server.should_exit = True
        await serving
        listener.close()


class TestSseTransport(TransportContract):
    @asynccontextmanager
    async def connect(
        self, realtime: RealtimeServer, request: Connect
    ) -> AsyncIterator[AsyncIterator[dict[str, Any]]]:
        url = f"/api/projects/{request.project_id}/realtime/collections/{request.collection}"
        headers = dict(request.headers)
        if request.cursor:
            headers["Last-Event-ID"] = request.cursor
        async with realtime.client.stream("GET", url, headers=headers) as response:
            if response.status_code != 200:
                raise Refused(response.status_code, (await response.aread()).decode())
            yield sse_events(response)


async def test_refusal_carries_the_api_error_body(realtime: RealtimeServer) -> None:
    response = await realtime.client.get("/api/projects/nosuchproject/realtime/collections/x")
    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] == "project_not_found"
    bad_cursor = await realtime.client.get(
        "/api/projects/nosuchproject/realtime/collections/x", params={"cursor": "nonsense"}
    )
    assert bad_cursor.status_code == 400
    assert bad_cursor.json()["errors"][0]["field"] == "cursor"


async def test_a_client_that_disconnects_leaves_no_subscriber(realtime: RealtimeServer) -> None:
    service = realtime.tessera.subscriptions
    before = service.subscriber_count
    project = f"sse{secrets.token_hex(4)}"
    created = await realtime.client.post(
        "/api/projects", json={"id": project, "name": project}, headers=realtime.admin_headers
    )
    assert created.status_code == 201, created.text
    notes = {"name": "notes", "fields": [{"name": "title", "type": "string"}]}
    created = await realtime.client.post(
        f"/api/projects/{project}/collections", json=notes, headers=realtime.admin_headers
    )
    assert created.status_code == 201, created.text
    request = Connect(project, "notes", realtime.admin_headers)
    async with TestSseTransport().connect(realtime, request):
        assert service.subscriber_count == before + 1
    for _ in range(200):  # the server notices the disconnect on its own schedule
        if service.subscriber_count == before:
            break
        await asyncio.sleep(0.05)
    assert service.subscriber_count == before
