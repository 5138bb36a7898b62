"""Errors a Node raises to its local callers (and the transport maps to gRPC codes)."""

from __future__ import annotations

__all__ = [
    "MemberExistsError",
    "MembershipBlockedError",
    "MembershipError",
    "NodeError",
    "NodeStoppedError",
    "NotAMemberError",
    "NotLeaderError",
    "ProposalLostError",
    "TransferInProgressError",
]


class NodeError(Exception):
    """NodeError is the base of the errors Node.propose / Node.read raise."""


class NotLeaderError(NodeError):
    """NotLeaderError: this node does not lead; leader_id/leader_address say who does, if known.

    The request was NOT accepted, so retrying it at the leader is safe.
    """

    def __init__(self, leader_id: str | None, leader_address: str | None) -> None:
        super().__init__(
            f"not the leader (leader: {leader_id or 'unknown'}"
            + (f" at {leader_address})" if leader_address else ")")
        )
        self.leader_id = leader_id
        self.leader_address = leader_address


class ProposalLostError(NodeError):
    """ProposalLostError: leadership changed before the proposal's outcome was known.

    The command may or may not be committed (a later leader may still commit
    it), so only an idempotent or de-duplicated command may be retried.
    """


class TransferInProgressError(NodeError):
    """TransferInProgressError: the leader is handing over leadership and takes no writes.

    Thesis 3.10, step 1 (the target catches up with a log that stops growing). The
    command was NOT appended, so retrying it is safe: at the new leader once the transfer
    completes, or here once it times out (within an election timeout).
    """

    def __init__(self, target: str) -> None:
        super().__init__(f"leadership transfer to {target} in progress: retry shortly")
        self.target = target


class NodeStoppedError(NodeError):
    """NodeStoppedError: the node stopped (or was never started) before answering."""


class MembershipError(NodeError):
    """MembershipError: a membership change was refused; nothing changed (thesis 4.1)."""


class MemberExistsError(MembershipError):
    """MemberExistsError: add of a node that already is a voter or learner."""


class NotAMemberError(MembershipError):
    """NotAMemberError: remove of a node that is neither a voter nor a learner."""


class MembershipBlockedError(MembershipError):
    """MembershipBlockedError: the rules block this change right now (retry later).

    An earlier config entry is still uncommitted, no entry of the leader's term
    has committed yet (Ongaro's 2015 single-server fix), a leadership transfer
    is in progress, or the change would remove the last voter.
    """
