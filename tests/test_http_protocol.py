"""Tessera's HTTP protocol (kernel/http_protocol.py) on a real uvicorn server: a response
head leaves with its first body part, and nothing that must not wait is held back."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest
import uvicorn
from starlette.types import Receive, Scope, Send

from kernel.http_protocol import HeadWithBody, HttpProtocol

HEADERS = [(b"content-type", b"text/plain")]


async def _app(scope: Scope, receive: Receive, send: Send) -> None:
    """Routes: /plain, /empty (204), /stream (two chunks, the second only after the client
    said it saw the first), /echo (reads the body: for ``Expect: 100-continue``)."""
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/plain":
        await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
        await send({"type": "http.response.body", "body": b"hello"})
    elif path == "/empty":
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})
    elif path == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
        await send({"type": "http.response.body", "body": b"first", "more_body": True})
        await STREAM_SEEN.wait()
        await send({"type": "http.response.body", "body": b"second"})
    elif path == "/echo":
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = [(b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


STREAM_SEEN = asyncio.Event()
#: The servers' keep-alive timeout, in seconds.
KEEP_ALIVE = 1


@pytest.fixture
async def port() -> AsyncIterator[int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        _app,
        http=HttpProtocol,
        loop="none",
        lifespan="off",
        log_level="warning",
        timeout_keep_alive=KEEP_ALIVE,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:  # noqa: ASYNC110 (uvicorn offers a flag, not an event)
        await asyncio.sleep(0.01)
    yield sock.getsockname()[1]
    server.should_exit = True
    await asyncio.wait_for(task, 10)


async def _exchange(port: int, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    data = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return data


def _request(method: str, path: str, extra: str = "") -> bytes:
    return f"{method} {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n{extra}\r\n".encode()


async def test_a_response_arrives_whole(port: int) -> None:
    response = await _exchange(port, _request("GET", "/plain"))
    assert response.startswith(b"HTTP/1.1 200 OK\r\n")
    assert response.endswith(b"\r\n\r\n5\r\nhello\r\n0\r\n\r\n")  # chunked: no length


async def test_a_head_request_gets_its_head(port: int) -> None:
    response = await _exchange(port, _request("HEAD", "/plain"))
    assert response.startswith(b"HTTP/1.1 200 OK\r\n")
    assert response.endswith(b"\r\n\r\n")


async def test_a_204_gets_its_head(port: int) -> None:
    response = await _exchange(port, _request("GET", "/empty"))
    assert response.startswith(b"HTTP/1.1 204 No Content\r\n")


async def test_a_stream_sends_its_head_with_the_first_chunk(port: int) -> None:
    STREAM_SEEN.clear()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(_request("GET", "/stream"))
    seen = b""
    while b"first" not in seen:  # arrives while the app still holds the rest
        seen += await asyncio.wait_for(reader.read(1024), 5)
    assert seen.startswith(b"HTTP/1.1 200 OK\r\n")
    STREAM_SEEN.set()
    rest = await asyncio.wait_for(reader.read(), 5)
    assert b"second" in rest
    writer.close()


async def test_100_continue_is_not_held_back(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(_request("POST", "/echo", "expect: 100-continue\r\ncontent-length: 4\r\n"))
    interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
    writer.write(b"ping")
    response = await asyncio.wait_for(reader.read(), 5)
    assert response.startswith(b"HTTP/1.1 200 OK\r\n") and response.endswith(b"ping")
    writer.close()


async def _keep_alive_exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
    writer.write(b"GET /plain HTTP/1.1\r\nhost: x\r\n\r\n")
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    return head + await asyncio.wait_for(reader.readuntil(b"0\r\n\r\n"), 5)


async def test_an_idle_keep_alive_connection_is_closed(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    assert (await _keep_alive_exchange(reader, writer)).startswith(b"HTTP/1.1 200 OK")
    assert await asyncio.wait_for(reader.read(), KEEP_ALIVE + 5) == b""  # closed by the server
    writer.close()


async def test_a_busy_keep_alive_connection_stays_open(port: int) -> None:
    """Requests keep coming for three timeouts: each idle stretch is shorter than one."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for _ in range(3 * KEEP_ALIVE * 4):
        assert (await _keep_alive_exchange(reader, writer)).startswith(b"HTTP/1.1 200 OK")
        await asyncio.sleep(KEEP_ALIVE / 4)
    writer.close()


class _Recorder:
    """Records what reaches the socket (the transport behind HeadWithBody)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, bytes]] = []

    def write(self, data: bytes) -> None:
        self.calls.append(("write", data))

    def writelines(self, chunks: tuple[bytes, ...]) -> None:
        self.calls.append(("writelines", b"".join(chunks)))

    def close(self) -> None:
        self.calls.append(("close", b""))


def test_head_and_body_leave_in_one_call() -> None:
    recorder = _Recorder()
    holder = HeadWithBody(recorder, lambda: None)  # type: ignore[arg-type]
    holder.write(b"HTTP/1.1 200 OK\r\n\r\n")
    assert recorder.calls == []
    holder.write(b"body")
    assert recorder.calls == [("writelines", b"HTTP/1.1 200 OK\r\n\r\nbody")]


def test_a_held_head_is_sent_before_closing() -> None:
    recorder = _Recorder()
    finished: list[bool] = []
    holder = HeadWithBody(recorder, lambda: finished.append(True))  # type: ignore[arg-type]
    holder.write(b"HTTP/1.1 500 Internal Server Error\r\n\r\n")
    holder.close()
    assert recorder.calls == [
        ("write", b"HTTP/1.1 500 Internal Server Error\r\n\r\n"),
        ("close", b""),
    ]
    holder.response_complete()
    assert finished == [True]
