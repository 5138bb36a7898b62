"""Messages between nodes: frozen values, ordered so a network bag can be a sorted tuple.

Every message names its sender, its receiver and the sender's term (Figure 2). Vote replies
echo the term of the request they answer: a vote counts only when it answers the current
election (etcd#8243).
"""

from __future__ import annotations

from dataclasses import dataclass

from spec._log import Entry

__all__ = [
    "AppendRequest",
    "AppendResponse",
    "Message",
    "VoteRequest",
    "VoteResponse",
    "message_sort_key",
]


@dataclass(frozen=True, slots=True)
class VoteRequest:
    """VoteRequest asks for a prevote (prevote=True) or a real vote in `term`.

    A prevote carries the asker's *current* term (the seed's behaviour), a real vote the term it
    just entered. Both carry the asker's last log index and term for the election restriction.

    `transfer` marks the real vote requests of an election started by TimeoutNow (thesis
    3.10): a voter may then ignore leader stickiness (thesis 4.2.3), never the log check. In
    this spec stickiness guards prevotes only, which a transfer election skips, so voters treat
    the flag like any vote request; it tells an implementation that also guards real votes.
    """

    src: int
    dst: int
    term: int
    prevote: bool
    last_log_index: int
    last_log_term: int
    transfer: bool = False


@dataclass(frozen=True, slots=True)
class VoteResponse:
    """VoteResponse answers a VoteRequest; `term` is the responder's term after handling it."""

    src: int
    dst: int
    term: int
    prevote: bool
    granted: bool
    request_term: int


@dataclass(frozen=True, slots=True)
class AppendRequest:
    """AppendRequest replicates `entries` after (prev_index, prev_term); empty = heartbeat.

    `read_ctx` is the leader's read-confirmation sequence number when the request was sent, so a
    reply proves the leader was still leader after every read with a ctx at most this one
    arrived (thesis section 6.4).

    `timeout_now` makes the request the leader's TimeoutNow (thesis 3.10), piggybacked on an
    append that ends at the leader's last index: a voter that accepts it, and so holds the
    leader's whole log, starts an election at once, skipping prevote.
    """

    src: int
    dst: int
    term: int
    prev_index: int
    prev_term: int
    entries: tuple[Entry, ...]
    leader_commit: int
    read_ctx: int
    timeout_now: bool = False


@dataclass(frozen=True, slots=True)
class AppendResponse:
    """AppendResponse acknowledges (success, match_index) or rejects with a back-off hint.

    On rejection, `hint_index` is where the leader should try next: one past the follower's log
    when it is short, or the first index of the conflicting term (section 5.3 optimisation).
    """

    src: int
    dst: int
    term: int
    success: bool
    match_index: int
    hint_index: int
    read_ctx: int


Message = VoteRequest | VoteResponse | AppendRequest | AppendResponse

_KIND_ORDER = {VoteRequest: 0, VoteResponse: 1, AppendRequest: 2, AppendResponse: 3}


def message_sort_key(message: Message) -> tuple[object, ...]:
    """message_sort_key orders messages of different kinds, for a canonical network bag."""
    match message:
        case VoteRequest():
            fields: tuple[object, ...] = (
                message.prevote,
                message.last_log_index,
                message.last_log_term,
                message.transfer,
            )
        case VoteResponse():
            fields = (message.prevote, message.granted, message.request_term)
        case AppendRequest():
            fields = (
                message.prev_index,
                message.prev_term,
                message.entries,
                message.leader_commit,
                message.read_ctx,
                message.timeout_now,
            )
        case AppendResponse():
            fields = (message.success, message.match_index, message.hint_index, message.read_ctx)
    return (message.src, message.dst, message.term, _KIND_ORDER[type(message)], *fields)
