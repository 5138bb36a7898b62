"""Errors raised by the Raft core.

Two families, as in h11: ``ProtocolError`` means a *peer* sent something the
core refuses (the input is dropped and no state changes), ``NotLeader`` means
the *local* caller asked a non-leader for something only a leader can do.
"""

from __future__ import annotations

from ._membership import MembershipRefusal

__all__ = [
    "CommittedConflict",
    "ConflictingLeader",
    "CoreError",
    "MalformedMessage",
    "MembershipChangeError",
    "NotLeader",
    "ProtocolError",
    "TransferInProgress",
    "UnknownSender",
    "WrongCluster",
]


class CoreError(Exception):
    """CoreError is the base of every error the Raft core raises."""


class ProtocolError(CoreError):
    """ProtocolError: a received message was refused; the core's state is unchanged."""


class UnknownSender(ProtocolError):  # noqa: N818 (names fixed by the API)
    """UnknownSender: the message's sender is not a voter of this cluster (or is ourselves)."""


class WrongCluster(ProtocolError):  # noqa: N818 (names fixed by the API)
    """WrongCluster: the message carries another cluster's id."""


class MalformedMessage(ProtocolError):  # noqa: N818 (names fixed by the API)
    """MalformedMessage: a field is impossible (negative index, gaps in entries, ...)."""


class ConflictingLeader(ProtocolError):  # noqa: N818 (names fixed by the API)
    """ConflictingLeader: an append arrived from a second leader of our own leader term.

    Election Safety (section 5.2) says this cannot happen between correct
    nodes, so the message is refused loudly instead of being obeyed.
    """


class CommittedConflict(ProtocolError):  # noqa: N818 (names fixed by the API)
    """CommittedConflict: an append would overwrite an entry we know is committed.

    State Machine Safety (section 5.4) forbids it; obeying would lose a write.
    """


class NotLeader(CoreError):  # noqa: N818 (names fixed by the API)
    """NotLeader: the request needs the leader; ``leader_hint`` is who we think leads, if anyone."""

    def __init__(self, leader_hint: str | None) -> None:
        super().__init__(f"not the leader (leader hint: {leader_hint!r})")
        self.leader_hint = leader_hint


class TransferInProgress(CoreError):  # noqa: N818 (named like NotLeader)
    """TransferInProgress: the leader refuses client writes while it hands over leadership.

    Thesis 3.10, step 1: "the prior leader stops accepting new client requests", so the
    target can catch up with a log that stops growing. Nothing changed; the write may be
    retried, at the new leader once the transfer completes, here if it times out.
    ``target`` is the node leadership is being handed to.
    """

    def __init__(self, target: str) -> None:
        super().__init__(f"leadership transfer to {target} in progress: writes are refused")
        self.target = target


class MembershipChangeError(CoreError, ValueError):
    """MembershipChangeError: a membership change was refused; nothing changed.

    ``reason`` says which rule refused it (thesis 4.1-4.2.2 and the 2015 single-server change
    fix), so a driver can tell "retry later" (BLOCKED) from "this can never work".
    """

    def __init__(self, reason: MembershipRefusal, message: str) -> None:
        super().__init__(message)
        self.reason = reason
