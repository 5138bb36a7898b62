"""The durability check: every acknowledged write-once key reads back with its value.

Raft's promise (paper section 5.4, State Machine Safety, and section 5.1's stable
storage) is that a write the leader acknowledged was committed and is never lost,
whatever crashes follow. The harness writes keys nobody overwrites, remembers the
ones acknowledged, restarts every node at once (only durable state survives), and
reads each one back. This module judges those reads; it is pure so it can be tested
with a hand-made loss, not only trusted on runs that never lose anything.

A read that itself failed (unknown outcome) counts as lost: after a full restart and
with no faults left, an acknowledged key that cannot be read is not shown durable.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from properties.linearizability import Operation, OpKind, Outcome

__all__ = ["DurabilityResult", "check_durability"]


@dataclass(frozen=True, slots=True)
class DurabilityResult:
    """DurabilityResult: how many acknowledged writes were checked and which were lost."""

    acknowledged: int
    lost_keys: tuple[str, ...]
    reasons: tuple[str, ...]

    @property
    def lost(self) -> int:
        return len(self.lost_keys)

    def render(self, limit: int = 10) -> str:
        head = f"durability: {self.acknowledged} acknowledged write-once keys, lost={self.lost}"
        shown = [f"  lost {k!r}: {r}" for k, r in zip(self.lost_keys, self.reasons, strict=True)]
        more = [f"  ... and {self.lost - limit} more"] if self.lost > limit else []
        return "\n".join([head, *shown[:limit], *more])


def check_durability(
    acknowledged: Mapping[str, bytes], final_reads: Mapping[str, Operation]
) -> DurabilityResult:
    """check_durability compares acknowledged values with the reads after the restart.

    ``final_reads`` maps a key to the get that read it back (a missing entry means it
    was never read, which is also a loss: the check must not pass by skipping keys).
    """
    lost: list[str] = []
    reasons: list[str] = []
    for key in sorted(acknowledged):
        want = acknowledged[key]
        op = final_reads.get(key)
        reason: str | None = None
        if op is None:
            reason = "never read back"
        elif op.kind is not OpKind.GET:
            reason = f"read back by a {op.kind.value}, not a get"
        elif op.outcome is not Outcome.OK:
            reason = f"the read back had outcome {op.outcome.value}"
        elif op.output is None:
            reason = f"missing (acknowledged {want!r})"
        elif op.output != want:
            reason = f"holds {op.output!r}, acknowledged {want!r}"
        if reason is not None:
            lost.append(key)
            reasons.append(reason)
    return DurabilityResult(len(acknowledged), tuple(lost), tuple(reasons))
