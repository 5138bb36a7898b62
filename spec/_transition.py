"""Internal plumbing shared by the handlers: a partial step and the "disabled" signal."""

from __future__ import annotations

from dataclasses import dataclass, replace

from spec._messages import Message
from spec._outputs import ReadAnswer
from spec._state import NodeState, Role

__all__ = ["DisabledError", "Transition", "step_down"]


class DisabledError(Exception):
    """DisabledError is raised by a handler when its input is not enabled in this state.

    `step` turns it into a StepResult with the original state and the reason, so a handler can
    bail out at any depth without having changed anything.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Transition:
    """Transition is a handler's result before step derives persist and committed outputs."""

    state: NodeState
    messages: tuple[Message, ...] = ()
    reads: tuple[ReadAnswer, ...] = ()

    def then(self, other: Transition) -> Transition:
        """then chains a follow-up transition, keeping the outputs of both in order."""
        return Transition(other.state, self.messages + other.messages, self.reads + other.reads)


def step_down(state: NodeState, term: int) -> NodeState:
    """step_down makes the node a follower in `term` (section 5.1: a higher term always wins).

    Entering a newer term forgets the vote; staying in the same term (check-quorum) keeps it, or
    a node could vote twice in one term. Either way the node no longer knows a leader.
    """
    return replace(
        state,
        term=term,
        voted_for=state.voted_for if term == state.term else None,
        role=Role.FOLLOWER,
        leader=None,
        prevotes=frozenset(),
        votes=frozenset(),
        rejections=frozenset(),
        pending_reads=(),
        recent_active=frozenset(),
        transfer_target=None,
    )
