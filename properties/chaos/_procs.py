"""ChaosCluster: ``raftwright node`` subprocesses on loopback, each behind a proxy.

Each node binds its own free port (``--listen``); its address in the cluster
configuration, the one every peer dials, is its ``NodeProxy`` (see _proxy), which
knows the calling node of every connection, so the harness can partition or degrade
any directed link. Every node is given the same ``--peers`` (all initial members at
their proxy addresses), so the configuration a leader writes into a config entry is
the same whoever wrote it. Clients dial the nodes' real ports. Every node traces into
one directory (``--trace-dir``); a restarted node appends a new segment to its trace
and reopens its SQLite data directory.

Membership (thesis 4.1): ``ids`` is the set of nodes the harness runs as members now.
``add_node`` makes a port and proxy for a new node, ``start`` then runs it with
``--join`` (no configuration: it waits to be added); ``retire`` stops a removed node
for good. The membership nemesis re-adds a removed machine under a new id (``n2.2``); a
node re-added under its old id gets a fresh data directory (``data/<id>~<generation>``).

With ``seeded_bug`` every node runs through ``properties.chaos._seeded_node``,
which patches that bug into the implementation before running the same CLI.

Processes are only ever signalled by the Popen objects this class created.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

from impl import RaftClient

from ._proxy import Network, NodeProxy
from ._seeded_node import launcher_prefix

__all__ = ["ChaosCluster", "free_ports"]

_ROOT = Path(__file__).resolve().parents[2]


def free_ports(count: int) -> list[int]:
    """free_ports asks the kernel for ``count`` distinct free loopback ports."""
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class ChaosCluster:
    """ChaosCluster owns the node processes, their proxies and their directories."""

    def __init__(
        self,
        workdir: Path,
        nodes: int,
        rng: random.Random,
        *,
        cluster_id: str = "chaos",
        snapshot_every: int = 2000,
        election_timeout_ms: tuple[int, int] = (200, 400),
        seeded_bug: str | None = None,
    ) -> None:
        self.workdir = workdir
        self.initial = [f"n{i + 1}" for i in range(nodes)]
        self.ids = list(self.initial)
        self.cluster_id = cluster_id
        self.snapshot_every = snapshot_every
        self.election_timeout_ms = election_timeout_ms
        self.seeded_bug = seeded_bug
        # Checked here, not at the first start: a typo must not cost a cluster start-up.
        self._launcher = (
            launcher_prefix(seeded_bug)
            if seeded_bug is not None
            else [sys.executable, "-m", "impl.cli"]
        )
        self.trace_dir = workdir / "traces"
        self._rng = rng
        self.network = Network()
        self.ports: dict[str, int] = {}
        self.proxies: dict[str, NodeProxy] = {}
        self.joined: set[str] = set()
        self.retired: list[str] = []
        self.generation: dict[str, int] = {}
        for node, port in zip(self.initial, free_ports(nodes), strict=True):
            self._make_proxy(node, port)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.paused: set[str] = set()
        self.starts = 0
        self.unexpected_exits: list[str] = []
        self._logs: dict[str, IO[bytes]] = {}
        self._reported: set[int] = set()
        self.closed = False

    def _make_proxy(self, node: str, port: int) -> NodeProxy:
        self.ports[node] = port
        proxy = NodeProxy(node, port, self.network, random.Random(self._rng.random()))
        self.proxies[node] = proxy
        return proxy

    @property
    def client_addresses(self) -> list[str]:
        return [f"127.0.0.1:{self.ports[i]}" for i in self.ids]

    def address(self, node: str) -> str:
        """address: where clients (the harness) dial ``node``: its real port."""
        return f"127.0.0.1:{self.ports[node]}"

    def peer_address(self, node: str) -> str:
        """peer_address: ``node``'s address in the configuration (its proxy)."""
        return self.proxies[node].address

    async def start_proxies(self) -> None:
        for proxy in self.proxies.values():
            if proxy.port == 0:
                await proxy.start()

    async def add_node(self, node: str) -> None:
        """add_node prepares a new node (port, proxy, fresh data dir) and makes it a member.

        The caller starts it (``start``) and asks the leader to add it. A node id used
        before (removed, then re-added) gets a new port and a fresh data directory.
        """
        if node in self.ids:
            raise RuntimeError(f"{node} is already a member")
        old = self.proxies.get(node)
        if old is not None:
            await old.close()
        (port,) = free_ports(1)
        proxy = self._make_proxy(node, port)
        await proxy.start()
        self.generation[node] = self.generation.get(node, 0) + 1
        self.joined.add(node)
        if node in self.retired:
            self.retired.remove(node)
        self.ids.append(node)

    def retire(self, node: str) -> None:
        """retire stops a node the cluster has removed and forgets it as a member."""
        if node in self.ids:
            self.ids.remove(node)
        self.stop_node(node)
        if node not in self.retired:
            self.retired.append(node)

    def data_dir(self, node: str) -> Path:
        gen = self.generation.get(node, 0)
        return self.workdir / "data" / (node if gen <= 1 else f"{node}~{gen}")

    def _peers_arg(self, node: str) -> str:
        if node in self.joined:
            return f"{node}={self.peer_address(node)}"
        return ",".join(f"{b}={self.peer_address(b)}" for b in self.initial)

    def start(self, node: str) -> None:
        """start launches one member (if it is not running); nothing once closed."""
        if self.closed or node not in self.ids:
            return
        old = self.procs.get(node)
        if old is not None and old.poll() is None:
            return
        (self.workdir / "logs").mkdir(parents=True, exist_ok=True)
        log = self._logs.get(node)
        if log is None:
            log = open(self.workdir / "logs" / f"{node}.log", "ab")  # noqa: SIM115
            self._logs[node] = log
        lo, hi = self.election_timeout_ms
        cmd = [
            *self._launcher,
            "--log-level",
            "WARNING",
            "node",
            "--id",
            node,
            "--listen",
            self.address(node),
            "--peers",
            self._peers_arg(node),
            "--data-dir",
            str(self.data_dir(node)),
            "--trace-dir",
            str(self.trace_dir),
            "--cluster-id",
            self.cluster_id,
            "--snapshot-every",
            str(self.snapshot_every),
            "--election-timeout-ms",
            f"{lo},{hi}",
        ]
        if node in self.joined:
            cmd.append("--join")
        log.write(f"--- start {time.time():.3f}\n".encode())
        log.flush()
        proc = subprocess.Popen(cmd, stdout=log, stderr=log, cwd=_ROOT)
        self.procs[node] = proc
        self.network.register(proc.pid, node)
        self.paused.discard(node)
        self.starts += 1

    def start_all(self) -> None:
        for node in self.ids:
            self.start(node)

    def running(self, node: str) -> bool:
        proc = self.procs.get(node)
        return proc is not None and proc.poll() is None

    def kill(self, node: str) -> None:
        """kill sends SIGKILL (a crash: no shutdown code runs) and reaps the process."""
        proc = self.procs.get(node)
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        self.network.forget(proc.pid)
        self.paused.discard(node)

    def pause(self, node: str) -> None:
        proc = self.procs.get(node)
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGSTOP)
            self.paused.add(node)

    def resume(self, node: str) -> None:
        proc = self.procs.get(node)
        if proc is not None and proc.poll() is None and node in self.paused:
            proc.send_signal(signal.SIGCONT)
        self.paused.discard(node)

    def check_exits(self) -> list[str]:
        """check_exits notes nodes that exited by themselves (a crash is an impl failure)."""
        found = []
        for node, proc in self.procs.items():
            code = proc.poll()
            if code is not None and code != -signal.SIGKILL and proc.pid not in self._reported:
                self._reported.add(proc.pid)
                found.append(f"{node} exited by itself with code {code}")
        self.unexpected_exits.extend(found)
        return found

    def partition(self, groups: list[set[str]]) -> None:
        """partition blocks every link between different groups (both directions)."""
        self.network.partition(groups, self.proxies)

    def lossy(self, node: str, loss: float) -> None:
        self.network.lossy(node, loss)

    def heal(self) -> None:
        self.network.heal()

    async def leader(self, timeout_s: float = 0.5) -> str | None:
        """leader is the node that says it leads in the highest term (None if none does)."""
        live = [n for n in self.ids if self.running(n) and n not in self.paused]
        if not live:
            return None
        async with RaftClient([self.address(n) for n in live]) as client:
            reports = await client.status_all(timeout_s)
        best: tuple[int, str] | None = None
        for report in reports:
            st = report.status
            if st is not None and st.role == "leader" and (best is None or st.term > best[0]):
                best = (st.term, st.id)
        return best[1] if best else None

    async def wait_for_leader(self, timeout_s: float) -> str | None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            leader = await self.leader()
            if leader is not None:
                return leader
            await asyncio.sleep(0.1)
        return None

    def stop_node(self, node: str, grace_s: float = 5.0) -> None:
        """stop_node: SIGCONT if paused, SIGTERM, then SIGKILL after the grace period."""
        proc = self.procs.get(node)
        if proc is None or proc.poll() is not None:
            return
        if node in self.paused:
            self.resume(node)
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        self.network.forget(proc.pid)
        self._reported.add(proc.pid)  # the harness stopped it: not an exit by itself
        if proc.returncode not in (0, -signal.SIGKILL, -signal.SIGTERM):
            self.unexpected_exits.append(f"{node} stopped with code {proc.returncode}")

    def stop_all(self) -> None:
        """stop_all stops every process this cluster started (members and retired ones)."""
        for node in list(self.procs):
            if node in self.paused:
                self.resume(node)
        for node in list(self.procs):
            self.stop_node(node)

    async def close(self) -> None:
        """close stops every node for good: a start() after it launches nothing.

        The injector may still be running when an interrupted run cleans up (its task
        is cancelled only after the run's own task); a restart it had scheduled must
        not leave a node behind once the harness has gone.
        """
        self.closed = True
        self.stop_all()
        for proxy in self.proxies.values():
            await proxy.close()
        for log in self._logs.values():
            with contextlib.suppress(OSError):
                log.close()

    def log_tail(self, node: str, lines: int = 15) -> str:
        path = self.workdir / "logs" / f"{node}.log"
        if not path.exists():
            return ""
        text = path.read_bytes().decode("utf-8", "replace").splitlines()
        return "\n".join(text[-lines:])
