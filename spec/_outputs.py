"""The result of one step: the new state and what the environment must do, in order.

The order is etcd's Ready contract: first make `persist` durable, then send `messages`, then
apply `committed` and answer `reads`. A disabled input comes back with the state unchanged,
no outputs and `rejected` saying why (h11 style: rejected input changes nothing).
"""

from __future__ import annotations

from dataclasses import dataclass

from spec._log import Entry
from spec._messages import Message
from spec._state import Durable, NodeState

__all__ = ["ReadAnswer", "StepResult"]


@dataclass(frozen=True, slots=True)
class ReadAnswer:
    """ReadAnswer releases a read: answer it once the state machine has applied `read_index`."""

    read_id: int
    read_index: int


@dataclass(frozen=True, slots=True)
class StepResult:
    """StepResult is the new state plus persist -> send -> apply outputs."""

    state: NodeState
    persist: Durable | None = None
    messages: tuple[Message, ...] = ()
    committed: tuple[Entry, ...] = ()
    reads: tuple[ReadAnswer, ...] = ()
    rejected: str | None = None

    @property
    def enabled(self) -> bool:
        """enabled is False when the input was refused and nothing changed."""
        return self.rejected is None
