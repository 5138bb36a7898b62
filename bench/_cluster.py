"""A 3-node cluster of either system, one process per node, on 127.0.0.1.

``Cluster`` starts the node workers, finds the leader by asking every node, runs load on the
leader, and measures failover: the survivors start probing, the leader gets SIGKILL, and the
failover time is from the kill to the first write a new leader commits (both instants on
CLOCK_MONOTONIC, which every process on the machine shares). The killed node is restarted
on its own data before the next round.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from bench._proc import Worker, WorkerError, free_ports

__all__ = ["Cluster"]

_IDS = ("a", "b", "c")


class Cluster:
    """Cluster of kind ``raftwright`` or ``pysyncobj`` (see module docstring)."""

    def __init__(
        self,
        kind: str,
        workdir: Path,
        *,
        fsync: bool = True,
        trace_dir: Path | None = None,
        snapshot_every: int = 10000,
    ) -> None:
        self.kind = kind
        self.workdir = workdir
        self.fsync = fsync
        self.trace_dir = trace_dir
        self.snapshot_every = snapshot_every
        ports = free_ports(3)
        self.addresses = {i: f"127.0.0.1:{p}" for i, p in zip(_IDS, ports, strict=True)}
        self.workers: dict[str, Worker] = {}

    # ------------------------------------------------------------ lifecycle

    def _spawn(self, node: str) -> Worker:
        if self.kind == "raftwright":
            peers = ",".join(f"{i}={a}" for i, a in self.addresses.items())
            args = [
                "--id",
                node,
                "--peers",
                peers,
                "--data-dir",
                str(self.workdir / node),
                "--snapshot-every",
                str(self.snapshot_every),
            ]
            if not self.fsync:
                args.append("--no-fsync")
            if self.trace_dir is not None:
                args += ["--trace-dir", str(self.trace_dir)]
            return Worker("bench._rw_worker", args, name=f"raftwright-{node}")
        partners = ",".join(a for i, a in self.addresses.items() if i != node)
        args = ["--self", self.addresses[node], "--partners", partners]
        return Worker("bench._pso_worker", args, name=f"pysyncobj-{node}")

    def start(self) -> None:
        if self.workdir.exists():
            shutil.rmtree(self.workdir)
        self.workdir.mkdir(parents=True)
        for node in _IDS:
            self.workers[node] = self._spawn(node)
        for worker in self.workers.values():
            worker.receive(30)
        self.wait_leader(30)

    def close(self) -> None:
        for worker in self.workers.values():
            worker.close()
        self.workers.clear()

    def __enter__(self) -> Cluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ queries

    def _node_of(self, leader: str) -> str:
        """_node_of maps a reported leader (raftwright id or PySyncObj address) to our id."""
        if leader in self.workers:
            return leader
        for node, address in self.addresses.items():
            if address == leader:
                return node
        raise KeyError(leader)

    def statuses(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for node, worker in self.workers.items():
            try:
                out[node] = worker.call({"op": "status"}, 10)
            except WorkerError:
                continue
        return out

    def wait_leader(self, timeout_s: float) -> str:
        """wait_leader returns the node every live node names as leader, which says so."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            sts = self.statuses()
            leaders = {s["leader"] for s in sts.values()}
            if len(leaders) == 1 and len(sts) == len(self.workers):
                (leader,) = leaders
                if leader is not None:
                    node = self._node_of(leader)
                    if sts[node]["role"] == "leader":
                        return node
            time.sleep(0.05)
        raise WorkerError(f"{self.kind}: no stable leader within {timeout_s}s")

    def leader_worker(self) -> Worker:
        return self.workers[self.wait_leader(30)]

    # ------------------------------------------------------------ work

    def load(
        self, *, kind: str, concurrency: int, payload: int, seconds: float, warmup: float = 0.3
    ) -> dict[str, Any]:
        req = {
            "op": "load",
            "kind": kind,
            "concurrency": concurrency,
            "payload": payload,
            "seconds": seconds,
            "warmup": warmup,
        }
        leader = self.wait_leader(30)
        before = {n: s["cpu_s"] for n, s in self.statuses().items()}
        result = self.workers[leader].call(req, seconds + warmup + 60)
        after = {n: s["cpu_s"] for n, s in self.statuses().items()}
        # CPU per committed op (warm-up included on both sides), whatever else the machine runs.
        ops = max(1, result["ops_all"])
        followers = [n for n in after if n != leader and n in before]
        result["leader_cpu_us_per_op"] = round((after[leader] - before[leader]) / ops * 1e6, 1)
        result["follower_cpu_us_per_op"] = round(
            sum(after[n] - before[n] for n in followers) / max(1, len(followers)) / ops * 1e6, 1
        )
        return result

    def failover_once(self) -> float:
        """failover_once kills the leader; ms until a survivor's first committed write."""
        leader = self.wait_leader(30)
        dead = leader if self.kind == "raftwright" else self.addresses[leader]
        survivors = [n for n in self.workers if n != leader]
        for node in survivors:
            self.workers[node].send({"op": "probe", "dead": dead, "timeout_s": 20})
        time.sleep(0.05)  # the probes are running
        t_kill = time.monotonic()
        self.workers[leader].sigkill()
        answers = [self.workers[n].receive(30) for n in survivors]
        wins = [float(a["t"]) for a in answers if a.get("ok")]
        if not wins:
            raise WorkerError(f"{self.kind}: no survivor committed a write: {answers}")
        elapsed_ms = (min(wins) - t_kill) * 1000
        # restart the victim on its own data and let it rejoin
        self.workers[leader] = self._spawn(leader)
        self.workers[leader].receive(30)
        self.wait_leader(30)
        return elapsed_ms
