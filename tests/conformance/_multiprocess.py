"""Recording a multi-process run: three ``raftwright node --trace-dir`` processes on loopback.

The leader is killed with SIGKILL (its trace may end in a torn line), writes continue, the
killed node restarts from its disk (a second trace segment), and the cluster is stopped with
SIGTERM. Everything is bounded in time and every process is reaped.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conformance._record import _free_ports

ROOT = Path(__file__).resolve().parents[2]


def _cli(*args: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "impl.cli", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


class ProcessCluster:
    """ProcessCluster runs one OS process per node, all tracing into ``trace_dir``."""

    def __init__(self, root: Path, trace_dir: Path, n: int = 3) -> None:
        ports = _free_ports(n)
        self.peers = {f"n{i + 1}": f"127.0.0.1:{port}" for i, port in enumerate(ports)}
        self.root = root
        self.trace_dir = trace_dir
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def cluster_arg(self) -> str:
        return ",".join(self.peers.values())

    def start(self, node_id: str) -> None:
        peers = ",".join(f"{k}={v}" for k, v in self.peers.items())
        self.procs[node_id] = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "impl.cli",
                "node",
                "--id",
                node_id,
                "--listen",
                self.peers[node_id],
                "--peers",
                peers,
                "--data-dir",
                str(self.root / node_id),
                "--trace-dir",
                str(self.trace_dir),
                "--cluster-id",
                "multiprocess",
            ],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def kill(self, node_id: str, sig: int = signal.SIGKILL) -> None:
        proc = self.procs.pop(node_id)
        proc.send_signal(sig)
        proc.wait(timeout=10)

    def stop_all(self) -> None:
        for node_id in list(self.procs):
            with contextlib.suppress(Exception):
                self.kill(node_id, signal.SIGTERM)
        for proc in self.procs.values():
            proc.kill()

    def leader(self, deadline_s: float = 20) -> str:
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            out = _cli("status", "--cluster", self.cluster_arg, "--json", timeout=10)
            if out.returncode == 0:
                nodes = json.loads(out.stdout)["nodes"]
                leaders = [n["id"] for n in nodes if n["role"] == "leader"]
                if len(leaders) == 1:
                    return str(leaders[0])
            time.sleep(0.2)
        raise AssertionError("no leader")

    def kv(self, *args: str) -> str:
        out = _cli("kv", "--cluster", self.cluster_arg, *args)
        if out.returncode != 0:
            raise AssertionError(f"kv {args} failed: {out.stderr}")
        return out.stdout.strip()


def record_multiprocess(root: Path, trace_dir: Path) -> None:
    """record_multiprocess: election, writes, a read, leader SIGKILL, restart, SIGTERM."""
    cluster = ProcessCluster(root, trace_dir)
    try:
        for node_id in cluster.peers:
            cluster.start(node_id)
        cluster.leader()
        cluster.kv("put", "a", "1")
        cluster.kv("put", "b", "2")
        assert cluster.kv("get", "a") == "1"
        leader = cluster.leader()
        cluster.kill(leader)
        cluster.kv("put", "c", "3")
        cluster.start(leader)
        cluster.kv("put", "d", "4")
        assert cluster.kv("get", "c") == "3"
        time.sleep(0.5)
    finally:
        cluster.stop_all()


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        record_multiprocess(Path(tmp), Path(sys.argv[1]))
