"""A fault-injecting TCP proxy per directed peer link, so partitions need no root.

Peers talk gRPC over TCP, and node A reaches node B only through the address
A was given for B. The harness gives every node its own proxy address for
every peer, so the link A -> B (A's requests to B and B's replies to them) is
one ``LinkProxy`` that can be cut without touching the processes:

- ``block()`` is a partition: open connections are reset and new ones are
  closed at once, so gRPC sees UNAVAILABLE (Raft's view: every message lost);
- ``flaky(p)`` is message loss: every chunk forwarded has probability ``p`` of
  killing its connection, which fails every RPC in flight on it. A TCP stream
  cannot drop single bytes without corrupting HTTP/2 framing, so loss is
  coarser than one message, which Raft must tolerate all the same;
- ``heal()`` restores normal forwarding.
"""

from __future__ import annotations

import asyncio
import contextlib
import random

__all__ = ["LinkProxy"]

_CHUNK = 1 << 16


class LinkProxy:
    """LinkProxy listens on 127.0.0.1:``port`` and forwards to ``target_port``."""

    def __init__(self, name: str, target_port: int, rng: random.Random) -> None:
        self.name = name
        self.target_port = target_port
        self.port = 0
        self._rng = rng
        self._server: asyncio.Server | None = None
        self._blocked = False
        self._loss = 0.0
        self._conns: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[None]] = set()
        self.connections = 0
        self.killed = 0

    @property
    def blocked(self) -> bool:
        return self._blocked

    async def start(self, port: int = 0) -> None:
        """start binds the listening socket (port 0 picks a free one)."""
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        """close stops listening and waits until every connection handler has finished."""
        if self._server is not None:
            self._server.close()
        self._blocked = True
        self._drop_all()
        if self._handlers:
            await asyncio.wait(set(self._handlers), timeout=2.0)
        for task in self._handlers:
            task.cancel()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)

    def block(self) -> None:
        self._blocked = True
        self._drop_all()

    def flaky(self, loss: float) -> None:
        self._loss = loss

    def heal(self) -> None:
        self._blocked = False
        self._loss = 0.0

    def _drop_all(self) -> None:
        for writer in list(self._conns):
            _abort(writer)
        self._conns.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            await self._serve(reader, writer)
        except asyncio.CancelledError:
            _abort(writer)  # the harness is shutting down
        finally:
            self._handlers.discard(task)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._blocked:
            _abort(writer)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            _abort(writer)
            return
        self.connections += 1
        self._conns.add(writer)
        self._conns.add(up_writer)
        pumps = [
            asyncio.create_task(self._pump(reader, up_writer, (writer, up_writer))),
            asyncio.create_task(self._pump(up_reader, writer, (writer, up_writer))),
        ]
        try:
            await asyncio.gather(*pumps, return_exceptions=True)
        finally:
            for w in (writer, up_writer):
                self._conns.discard(w)
                _abort(w)

    async def _pump(
        self,
        src: asyncio.StreamReader,
        dst: asyncio.StreamWriter,
        pair: tuple[asyncio.StreamWriter, asyncio.StreamWriter],
    ) -> None:
        try:
            while True:
                data = await src.read(_CHUNK)
                if not data or self._blocked:
                    break
                if self._loss and self._rng.random() < self._loss:
                    self.killed += 1
                    break
                dst.write(data)
                await dst.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            for w in pair:
                _abort(w)


def _abort(writer: asyncio.StreamWriter) -> None:
    """_abort resets the connection (no graceful FIN: a cut cable, not a polite close)."""
    transport = writer.transport
    if not transport.is_closing():
        with contextlib.suppress(Exception):
            transport.abort()
