"""raftwright's properties: the claims we make and the engines that check them.

Invariants are plain functions over spec cluster states (`STATE_INVARIANTS`,
`TRANSITION_INVARIANTS`); the engines (Hypothesis, the exhaustive explorer, Z3, trace
conformance) all check that one list, and the mutant catalogue shows each engine can fail.
"""

from properties._invariants import (
    STATE_INVARIANTS,
    TRANSITION_INVARIANTS,
    StateInvariant,
    TransitionInvariant,
    Violation,
    check_state,
    check_transition,
)
from properties._report import describe_action, describe_message, describe_node, format_run

__all__ = [
    "STATE_INVARIANTS",
    "TRANSITION_INVARIANTS",
    "StateInvariant",
    "TransitionInvariant",
    "Violation",
    "check_state",
    "check_transition",
    "describe_action",
    "describe_message",
    "describe_node",
    "format_run",
]
