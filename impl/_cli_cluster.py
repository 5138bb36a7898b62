"""``raftwright cluster``: a local cluster of node subprocesses in the foreground.

One ``python -m impl.cli node`` process per node, so a node can be killed and
restarted like a real server. Data lives under DIR/node-<id> and survives
restarts. SIGINT/SIGTERM stops every child (SIGTERM, then SIGKILL after a grace
period) and the command exits.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

__all__ = ["cluster_members", "run_cluster"]

_GRACE_S = 5.0


def cluster_members(nodes: int, host: str, base_port: int) -> dict[str, str]:
    """cluster_members names the nodes n1..nN on consecutive ports."""
    return {f"n{i + 1}": f"{host}:{base_port + i}" for i in range(nodes)}


def _stop_children(children: dict[str, subprocess.Popen[bytes]]) -> None:
    for proc in children.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + _GRACE_S
    for proc in children.values():
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_cluster(*, nodes: int, base_port: int, data_dir: Path, host: str, cluster_id: str) -> int:
    """run_cluster starts the nodes, waits for a signal, then stops them all."""
    if not 1 <= nodes <= 99:
        print("raftwright cluster: --nodes must be between 1 and 99", file=sys.stderr)
        return 3
    if not 1 <= base_port <= 65535 - nodes:
        print("raftwright cluster: --base-port out of range", file=sys.stderr)
        return 3
    members = cluster_members(nodes, host, base_port)
    peers = ",".join(f"{k}={v}" for k, v in members.items())
    stop_requested = False

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stop_requested
        stop_requested = True

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    children: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for node_id, address in members.items():
            node_dir = data_dir / f"node-{node_id}"
            node_dir.mkdir(parents=True, exist_ok=True)
            cmd = [
                sys.executable,
                "-m",
                "impl.cli",
                "node",
                "--id",
                node_id,
                "--listen",
                address,
                "--peers",
                peers,
                "--data-dir",
                str(node_dir),
                "--cluster-id",
                cluster_id,
            ]
            # Children ignore SIGINT of the terminal's process group: this
            # process stops them in order instead.
            children[node_id] = subprocess.Popen(cmd, start_new_session=True)
        addresses = ",".join(members.values())
        print(f"raftwright cluster: {nodes} nodes running (data under {data_dir})", flush=True)
        for node_id, address in members.items():
            print(f"  {node_id}  {address}  pid {children[node_id].pid}", flush=True)
        print(
            f"try:  raftwright kv --cluster {addresses} put hello world\n"
            f"      raftwright kv --cluster {addresses} get hello\n"
            f"      raftwright status --cluster {addresses}\n"
            "Ctrl-C stops the cluster.",
            flush=True,
        )
        reported: set[str] = set()
        while not stop_requested:
            time.sleep(0.2)
            for node_id, proc in children.items():
                code = proc.poll()
                if code is not None and node_id not in reported:
                    reported.add(node_id)
                    print(f"raftwright cluster: node {node_id} exited with {code}", flush=True)
            if len(reported) == len(children):
                print("raftwright cluster: every node exited", file=sys.stderr)
                return 3
    finally:
        _stop_children(children)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print("raftwright cluster: stopped", flush=True)
    return 0
