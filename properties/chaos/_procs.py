"""ChaosCluster: ``raftwright node`` subprocesses on loopback, wired through link proxies.

Each node binds its own free port; its ``--peers`` names every OTHER node by
the port of the proxy for that directed link (see _proxy), so the harness can
partition or degrade any link. Clients dial the nodes' real ports. Every node
traces into one directory (``--trace-dir``); a restarted node appends a new
segment to its trace and reopens its SQLite data directory.

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

from ._proxy import LinkProxy
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
        self.ids = [f"n{i + 1}" for i in range(nodes)]
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
        self.ports = dict(zip(self.ids, free_ports(nodes), strict=True))
        self.proxies = {
            (a, b): LinkProxy(f"{a}->{b}", self.ports[b], random.Random(rng.random()))
            for a in self.ids
            for b in self.ids
            if a != b
        }
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.paused: set[str] = set()
        self.starts = 0
        self.unexpected_exits: list[str] = []
        self._logs: dict[str, IO[bytes]] = {}
        self._reported: set[int] = set()
        self.closed = False

    @property
    def client_addresses(self) -> list[str]:
        return [f"127.0.0.1:{self.ports[i]}" for i in self.ids]

    def address(self, node: str) -> str:
        return f"127.0.0.1:{self.ports[node]}"

    async def start_proxies(self) -> None:
        for proxy in self.proxies.values():
            await proxy.start()

    def _peers_arg(self, node: str) -> str:
        parts = [f"{node}=127.0.0.1:{self.ports[node]}"]
        parts += [f"{b}=127.0.0.1:{self.proxies[(node, b)].port}" for b in self.ids if b != node]
        return ",".join(parts)

    def start(self, node: str) -> None:
        """start launches one node (it must not be running); nothing once closed."""
        if self.closed:
            return
        old = self.procs.get(node)
        if old is not None and old.poll() is None:
            raise RuntimeError(f"{node} is already running")
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
            str(self.workdir / "data" / node),
            "--trace-dir",
            str(self.trace_dir),
            "--cluster-id",
            self.cluster_id,
            "--snapshot-every",
            str(self.snapshot_every),
            "--election-timeout-ms",
            f"{lo},{hi}",
        ]
        log.write(f"--- start {time.time():.3f}\n".encode())
        log.flush()
        self.procs[node] = subprocess.Popen(cmd, stdout=log, stderr=log, cwd=_ROOT)
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
        side = {node: i for i, group in enumerate(groups) for node in group}
        for (a, b), proxy in self.proxies.items():
            if side.get(a) != side.get(b):
                proxy.block()

    def lossy(self, node: str, loss: float) -> None:
        for (a, b), proxy in self.proxies.items():
            if node in (a, b):
                proxy.flaky(loss)

    def heal(self) -> None:
        for proxy in self.proxies.values():
            proxy.heal()

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
        if proc.returncode not in (0, -signal.SIGKILL, -signal.SIGTERM):
            self._reported.add(proc.pid)
            self.unexpected_exits.append(f"{node} stopped with code {proc.returncode}")

    def stop_all(self) -> None:
        for node in self.ids:
            if node in self.paused:
                self.resume(node)
        for node in self.ids:
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
