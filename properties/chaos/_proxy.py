"""A fault-injecting TCP proxy in front of every node, so partitions need no root.

Membership changes put each member's address into the replicated configuration
(thesis 4.1: a config entry names every server and where to reach it), so every
peer, and every client, dials one address per node. The harness makes that address
a ``NodeProxy`` that forwards to the node's real port. A partition is a rule about
directed links (A may not reach B), so the proxy must know who is calling: on
every accepted connection it looks the caller's socket up in ``/proc/net/tcp`` and
finds which of the harness's node processes holds it (``/proc/PID/fd``). A caller
that is no node (the harness's own clients) is never cut off: faults are between
servers. Linux only, like the rest of the harness's signals.

- ``Network.partition(groups)`` cuts every link between different groups: open
  connections are reset and new ones closed at once, so gRPC sees UNAVAILABLE (Raft's
  view: every message lost);
- ``Network.lossy(node, p)`` is message loss on every link of ``node``: every chunk
  forwarded has probability ``p`` of killing its connection, which fails every RPC in
  flight on it. A TCP stream cannot drop single bytes without corrupting HTTP/2
  framing, so loss is coarser than one message, which Raft must tolerate all the same;
- ``Network.heal()`` restores normal forwarding.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
from collections.abc import Iterable

__all__ = ["Network", "NodeProxy", "socket_owner_inode"]

_CHUNK = 1 << 16


def socket_owner_inode(
    peer_port: int, local_port: int, tables: tuple[str, ...] = ("/proc/net/tcp", "/proc/net/tcp6")
) -> int | None:
    """socket_owner_inode: the inode of the loopback socket 127.0.0.1:peer_port -> local_port.

    That is the caller's end of a connection we accepted on ``local_port``; the kernel
    lists it with the caller's port as its local address. gRPC dials from dual-stack
    sockets, so the caller's end may be in ``tcp6`` as ``::ffff:127.0.0.1``.
    """
    want_local = f"0100007F:{peer_port:04X}"
    want_remote = f"0100007F:{local_port:04X}"
    for table in tables:
        try:
            with open(table, encoding="ascii") as handle:
                next(handle, None)
                for line in handle:
                    fields = line.split()
                    if (
                        len(fields) > 9
                        and fields[1].endswith(want_local)
                        and fields[2].endswith(want_remote)
                    ):
                        return int(fields[9])
        except OSError:
            continue
    return None


def _pid_holding(inode: int, pids: Iterable[int]) -> int | None:
    tag = f"socket:[{inode}]"
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{pid}/fd/{fd}") == tag:
                    return pid
    return None


class Network:
    """Network holds the link rules and knows which process is which node."""

    def __init__(self) -> None:
        self.blocked: set[tuple[str, str]] = set()
        self.loss: dict[str, float] = {}
        self._pids: dict[int, str] = {}
        self.proxies: dict[str, NodeProxy] = {}
        self.unidentified = 0

    def register(self, pid: int, node: str) -> None:
        """register: connections from process ``pid`` come from ``node``."""
        self._pids[pid] = node

    def forget(self, pid: int) -> None:
        self._pids.pop(pid, None)

    def identify(self, peer_port: int, local_port: int) -> str | None:
        """identify: the node whose process opened this connection, None for anyone else."""
        inode = socket_owner_inode(peer_port, local_port)
        if inode is None:
            self.unidentified += 1
            return None
        pid = _pid_holding(inode, list(self._pids))
        return self._pids.get(pid) if pid is not None else None

    def allows(self, src: str | None, dst: str) -> bool:
        return src is None or (src, dst) not in self.blocked

    def loss_on(self, src: str | None, dst: str) -> float:
        if src is None:
            return 0.0
        return max(self.loss.get(src, 0.0), self.loss.get(dst, 0.0))

    def partition(self, groups: list[set[str]], nodes: Iterable[str]) -> None:
        """partition cuts every link between different groups (both directions).

        A node in no group is on a side of its own (cut from every listed node).
        """
        side = {node: i for i, group in enumerate(groups) for node in group}
        every = set(nodes) | set(side)
        self.blocked = {
            (a, b) for a in every for b in every if a != b and side.get(a) != side.get(b)
        }
        self._enforce()

    def lossy(self, node: str, loss: float) -> None:
        self.loss[node] = loss

    def heal(self) -> None:
        self.blocked.clear()
        self.loss.clear()

    def _enforce(self) -> None:
        for proxy in self.proxies.values():
            proxy.enforce()


class NodeProxy:
    """NodeProxy listens on 127.0.0.1:``port`` and forwards to ``node``'s real port."""

    def __init__(self, node: str, target_port: int, network: Network, rng: random.Random) -> None:
        self.node = node
        self.target_port = target_port
        self.port = 0
        self.network = network
        self._rng = rng
        self._server: asyncio.Server | None = None
        self._closed = False
        self._conns: dict[asyncio.StreamWriter, str | None] = {}
        self._handlers: set[asyncio.Task[None]] = set()
        self.connections = 0
        self.refused = 0
        self.killed = 0
        network.proxies[node] = self

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self, port: int = 0) -> None:
        """start binds the listening socket (port 0 picks a free one)."""
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        """close stops listening and waits until every connection handler has finished."""
        if self._server is not None:
            self._server.close()
        self._closed = True
        for writer in list(self._conns):
            _abort(writer)
        self._conns.clear()
        if self._handlers:
            await asyncio.wait(set(self._handlers), timeout=2.0)
        for task in self._handlers:
            task.cancel()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)

    def enforce(self) -> None:
        """enforce resets every open connection whose link is now cut."""
        for writer, src in list(self._conns.items()):
            if not self.network.allows(src, self.node):
                _abort(writer)
                self._conns.pop(writer, None)

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
        peer = writer.get_extra_info("peername")
        src = self.network.identify(int(peer[1]), self.port) if peer else None
        if self._closed or not self.network.allows(src, self.node):
            self.refused += 1
            _abort(writer)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            _abort(writer)
            return
        self.connections += 1
        self._conns[writer] = src
        self._conns[up_writer] = src
        pair = (writer, up_writer)
        pumps = [
            asyncio.create_task(self._pump(reader, up_writer, src, pair)),
            asyncio.create_task(self._pump(up_reader, writer, src, pair)),
        ]
        try:
            await asyncio.gather(*pumps, return_exceptions=True)
        finally:
            for w in pair:
                self._conns.pop(w, None)
                _abort(w)

    async def _pump(
        self,
        src_reader: asyncio.StreamReader,
        dst: asyncio.StreamWriter,
        src: str | None,
        pair: tuple[asyncio.StreamWriter, asyncio.StreamWriter],
    ) -> None:
        try:
            while True:
                data = await src_reader.read(_CHUNK)
                if not data or self._closed or not self.network.allows(src, self.node):
                    break
                loss = self.network.loss_on(src, self.node)
                if loss and self._rng.random() < loss:
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
