"""A TCP proxy in front of PostgreSQL that a test can cut, to see Tessera lose its database."""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import parse_qs, urlsplit

from tests.services import free_port


class PostgresProxy:
    """Listens on 127.0.0.1:<port> and forwards to the server of ``target_url`` (TCP or a
    Unix socket); :meth:`cut` drops every connection and stops listening."""

    def __init__(self, target_url: str) -> None:
        self.target = urlsplit(target_url)
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        #: Connections forwarded so far.
        self.opened = 0

    def url(self) -> str:
        user = self.target.username or "postgres"
        return f"postgresql://{user}@127.0.0.1:{self.port}{self.target.path}"

    async def _open_target(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        socket_dir = parse_qs(self.target.query).get("host", [None])[0]
        if socket_dir:
            return await asyncio.open_unix_connection(
                f"{socket_dir}/.s.PGSQL.{self.target.port or 5432}"
            )
        return await asyncio.open_connection(self.target.hostname, self.target.port or 5432)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def _handle(
        self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        self.opened += 1
        server_reader, server_writer = await self._open_target()
        self._writers |= {client_writer, server_writer}

        async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            with contextlib.suppress(Exception):
                writer.close()

        await asyncio.gather(pipe(client_reader, server_writer), pipe(server_reader, client_writer))

    async def cut(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in self._writers:
            with contextlib.suppress(Exception):
                writer.transport.abort()
        self._writers.clear()
