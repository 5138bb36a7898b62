"""BenchStateMachine: the state machine every raftwright benchmark node replicates."""

from __future__ import annotations

import json

__all__ = ["BenchStateMachine"]


class BenchStateMachine:
    """BenchStateMachine counts applied commands: the cheapest honest state machine.

    It mirrors the PySyncObj side (a replicated method that stores its argument), so the
    figures compare the consensus layers, not the applications.
    """

    def __init__(self) -> None:
        self.count = 0
        self.last = b""

    def apply(self, command: bytes) -> bytes:
        self.count += 1
        self.last = command
        return b""

    def query(self, query: bytes) -> bytes:
        return str(self.count).encode()

    def snapshot(self) -> bytes:
        return json.dumps({"count": self.count, "last": self.last.hex()}).encode()

    def restore(self, data: bytes) -> None:
        state = json.loads(data)
        self.count = int(state["count"])
        self.last = bytes.fromhex(state["last"])
