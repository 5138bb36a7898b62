"""StateMachine: what a user gives a Node to replicate.

The node calls apply() with every committed command, in log order, exactly once
per entry and on every replica, so apply() must be deterministic. query() is
for linearizable reads and must not change state. snapshot()/restore() let the
node compact its log: restore(snapshot()) must reproduce the state exactly,
including any de-duplication bookkeeping.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

__all__ = ["StateMachine"]


@runtime_checkable
class StateMachine(Protocol):
    """StateMachine is the replicated application (see module docstring)."""

    def apply(self, command: bytes) -> bytes:
        """Apply one committed command and return its result for the proposer."""
        ...

    def query(self, query: bytes) -> bytes:
        """Answer a read-only query against the current state."""
        ...

    def snapshot(self) -> bytes:
        """Serialise the whole state."""
        ...

    def restore(self, data: bytes) -> None:
        """Replace the whole state by a snapshot() result."""
        ...
