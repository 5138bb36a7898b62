"""Node processes, cluster status and replica inspection for the deployment tests.

Nodes run as real ``raftwright node`` processes (the command a deployment
runs), each in its own session so a stop reaches it and nothing it started.
After a run, ``replay_store`` rebuilds one node's key-value state from what
that node made durable (its SQLite store: snapshot, then log entries up to an
index), which is how the tests prove a write reached every replica rather than
only that the leader answered for it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from impl import KVStateMachine
from impl._core import EntryKind
from impl._storage import SqliteStorage
from tests._ports import consecutive_free_ports, free_ports

__all__ = [
    "ROOT",
    "NodeProcess",
    "cli_command",
    "cluster_status",
    "consecutive_free_ports",
    "free_ports",
    "replay_store",
    "start_node",
    "stop_nodes",
]

ROOT = Path(__file__).resolve().parents[2]
STORE_NAME = "raft.sqlite3"


def cli_command(*args: str) -> list[str]:
    """cli_command is ``raftwright ARGS`` run with this interpreter (the venv's)."""
    return [sys.executable, "-m", "impl.cli", *args]


@dataclass
class NodeProcess:
    """NodeProcess is one running node: its id, process and the file its output goes to."""

    node_id: str
    process: subprocess.Popen[bytes]
    log_path: Path
    log_file: TextIO

    def output(self) -> str:
        if not self.log_file.closed:
            self.log_file.flush()
        return self.log_path.read_text(errors="replace")


def start_node(
    node_id: str, args: Sequence[str], log_path: Path, prefix: Sequence[str] = ()
) -> NodeProcess:
    """start_node runs ``PREFIX raftwright node ARGS`` with its output in log_path."""
    log_file = log_path.open("w")
    process = subprocess.Popen(
        [*prefix, *cli_command("node", *args)],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    return NodeProcess(node_id, process, log_path, log_file)


def stop_nodes(nodes: Sequence[NodeProcess], timeout_s: float = 15.0) -> dict[str, int]:
    """stop_nodes sends SIGTERM to every node, waits, then SIGKILLs what is left.

    Returns each node's exit code (negative: killed by that signal).
    """
    for node in nodes:
        if node.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(node.process.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    codes: dict[str, int] = {}
    for node in nodes:
        try:
            codes[node.node_id] = node.process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(node.process.pid, signal.SIGKILL)
            codes[node.node_id] = node.process.wait(10)
        node.log_file.close()
    return codes


def cluster_status(
    addresses: Sequence[str], prefix: Sequence[str] = (), extra: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """cluster_status runs ``raftwright status --json`` and returns its "nodes" list."""
    result = subprocess.run(
        [*prefix, *cli_command("status", "--cluster", ",".join(addresses), "--json", *extra)],
        cwd=ROOT,
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
    )
    if result.returncode not in (0, 2):
        raise AssertionError(f"status failed ({result.returncode}): {result.stderr}")
    nodes: list[dict[str, Any]] = json.loads(result.stdout)["nodes"]
    return nodes


def replay_store(data_dir: Path, upto: int) -> KVStateMachine:
    """replay_store rebuilds a node's KV state from its store, through log index upto.

    The snapshot (if any) is restored first, then every NORMAL entry after it
    up to ``upto`` is applied in order; fails if the store does not reach upto.
    """
    storage = SqliteStorage(data_dir / STORE_NAME)
    try:
        stored = storage.load()
        snapshot = storage.load_snapshot()
    finally:
        storage.close()
    machine = KVStateMachine()
    base = 0
    if snapshot is not None:
        meta, data = snapshot
        machine.restore(data)
        base = meta.index
    last = stored.entries[-1].index if stored.entries else base
    if last < upto:
        raise AssertionError(f"{data_dir}: store ends at index {last}, expected >= {upto}")
    for entry in stored.entries:
        if entry.index > upto:
            break
        if entry.index > base and entry.kind is EntryKind.NORMAL:
            machine.apply(entry.data)
    return machine
