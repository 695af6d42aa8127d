"""A TCP relay in front of a test server that can drop every connection, as a network would."""

from __future__ import annotations

import asyncio
import contextlib


class DroppingProxy:
    """Relays 127.0.0.1 connections to `port`; `drop()` cuts them all and holds new ones.

    While held, a new connection is accepted but not relayed until `release()`, so a
    client that reconnects at once still misses whatever happens in between. The
    bytes each client sends are kept in `sent` (the request heads, for assertions).
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.sent: list[bytes] = []
        self._open = asyncio.Event()
        self._open.set()
        self._transports: set[asyncio.BaseTransport] = set()
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def __aenter__(self) -> DroppingProxy:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._open.set()
        self._cut()
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    def drop(self) -> None:
        """Cut every open connection (a reset, both ways) and hold new ones."""
        self._open.clear()
        self._cut()

    def release(self) -> None:
        self._open.set()

    def _cut(self) -> None:
        for transport in list(self._transports):
            transport.abort()
        self._transports.clear()

    async def _relay(self, client: asyncio.StreamReader, to_client: asyncio.StreamWriter) -> None:
        await self._open.wait()
        try:
            upstream, to_upstream = await asyncio.open_connection("127.0.0.1", self.port)
        except OSError:
            to_client.transport.abort()
            return
        self._transports |= {to_client.transport, to_upstream.transport}
        await asyncio.gather(
            self._pipe(client, to_upstream, record=True), self._pipe(upstream, to_client)
        )

    async def _pipe(
        self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, *, record: bool = False
    ) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await source.read(65536):
                if record:
                    self.sent.append(data)
                sink.write(data)
                await sink.drain()
        self._transports.discard(sink.transport)
        sink.transport.abort()
