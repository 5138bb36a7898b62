"""Validation of received messages, done before the core touches any state.

Every check here raises a ``ProtocolError`` subclass; because it runs first,
a refused message leaves the core exactly as it was (the h11 rule, and a test
says so). The checks reject only *impossible* values, never merely stale ones:
a stale message is valid and is ignored or answered by the protocol itself.
"""

from __future__ import annotations

from typing import assert_never

from ._errors import MalformedMessage, UnknownSender, WrongCluster
from ._membership import Membership, decode_config
from ._messages import (
    AppendRequest,
    AppendResponse,
    Entry,
    EntryKind,
    Message,
    SnapshotMeta,
    SnapshotRequest,
    SnapshotResponse,
    TimeoutNow,
    VoteRequest,
    VoteResponse,
)

__all__ = ["validate_message"]

_MESSAGE_TYPES = (
    VoteRequest,
    VoteResponse,
    AppendRequest,
    AppendResponse,
    SnapshotRequest,
    SnapshotResponse,
    TimeoutNow,
)


# Terms and indexes travel as uint64 but are stored as SQLite's signed 64-bit INTEGER: a
# larger value would be accepted here and then crash the node when it is persisted.
_MAX_COUNT = (1 << 63) - 1


def _count(name: str, value: object) -> int:
    """_count checks that ``value`` is an int in [0, 2**63) (bools are not counts)."""
    if type(value) is not int or value < 0:
        raise MalformedMessage(f"{name} must be a non-negative integer, got {value!r}")
    if value > _MAX_COUNT:
        raise MalformedMessage(f"{name} {value} exceeds the 63-bit range storage can hold")
    return value


def _position(what: str, index: int, term: int, msg_term: int) -> None:
    """_position checks a (log index, log term) pair a message claims the sender holds.

    Index 0 is the empty log with term 0; any real entry has a term >= 1 that
    cannot exceed the sender's current term.
    """
    if (index == 0) != (term == 0):
        raise MalformedMessage(f"{what}: index {index} with term {term} is impossible")
    if term > msg_term:
        raise MalformedMessage(f"{what}: log term {term} is above message term {msg_term}")


def _entries(msg: AppendRequest) -> None:
    entries = msg.entries
    if type(entries) is not tuple:
        raise MalformedMessage("entries must be a tuple")
    expected = msg.prev_log_index + 1
    prev_term = msg.prev_log_term
    top = msg.term
    for e in entries:
        if type(e) is not Entry:
            raise MalformedMessage(f"entries must hold Entry records, got {type(e).__name__}")
        if type(e.index) is not int or e.index > _MAX_COUNT or e.index != expected:
            raise MalformedMessage(
                f"entries not contiguous: expected index {expected}, got {e.index}"
            )
        term = e.term
        if type(term) is not int or term < prev_term or term > top:
            raise MalformedMessage(
                f"entry {e.index}: term {term!r} outside [{prev_term}, {top}] "
                "(terms never decrease along a log and never exceed the message term)"
            )
        if type(e.kind) is not EntryKind or type(e.data) is not bytes:
            raise MalformedMessage(f"entry {e.index}: bad kind or data type")
        if e.kind is EntryKind.CONFIG:
            try:
                decode_config(e.data)
            except ValueError as exc:
                raise MalformedMessage(f"entry {e.index}: {exc}") from exc
        prev_term = term
        expected += 1


def _meta(meta: object, msg_term: int) -> None:
    if type(meta) is not SnapshotMeta:
        raise MalformedMessage("snapshot meta must be a SnapshotMeta")
    _count("meta.index", meta.index)
    _count("meta.term", meta.term)
    _position("snapshot", meta.index, meta.term, msg_term)
    if type(meta.voters) is not tuple or not all(type(v) is str for v in meta.voters):
        raise MalformedMessage("snapshot voters must be a tuple of node ids")
    config = meta.config
    if config is not None:
        if type(config) is not Membership:
            raise MalformedMessage("snapshot config must be a Membership")
        _count("meta.config.index", config.index)
        if not config.voters or config.index > meta.index:
            raise MalformedMessage("snapshot config needs a voter and an index <= the snapshot's")
        for node, addr in (*config.voters.items(), *config.learners.items()):
            if type(node) is not str or not node or type(addr) is not str:
                raise MalformedMessage(f"snapshot config: bad member {node!r}: {addr!r}")


def validate_message(
    msg: Message,
    cluster_id: str,
    node_id: str,
    members: frozenset[str],
    following: tuple[str | None, int] = (None, 0),
) -> None:
    """validate_message raises a ProtocolError if ``msg`` must be refused, else returns.

    Accepted senders: the members (voters and learners) of the configuration in use, the
    leader we follow, and a server claiming to lead our term or a later one with an append or
    a snapshot: a new learner, or a node started to join, must obey a leader it has never
    heard of (thesis 4.2.1). Election Safety makes such a claim true (one leader per term).
    ``following`` is (the leader we follow or None, our current term).
    """
    leader, current_term = following
    if not isinstance(msg, _MESSAGE_TYPES):
        raise MalformedMessage(f"not a Raft message: {type(msg).__name__}")
    if msg.cluster_id != cluster_id:
        raise WrongCluster(f"message for cluster {msg.cluster_id!r}, this is {cluster_id!r}")
    if msg.sender == node_id:
        raise UnknownSender(f"sender {msg.sender!r} is this node itself")
    if msg.sender not in members and (msg.sender != leader or leader is None):
        claims_lead = isinstance(msg, AppendRequest | SnapshotRequest)
        if not claims_lead or _count("term", msg.term) < current_term:
            raise UnknownSender(
                f"sender {msg.sender!r} is not a member of this node's configuration"
            )
    term = _count("term", msg.term)
    match msg:
        case VoteRequest():
            _count("last_log_index", msg.last_log_index)
            _count("last_log_term", msg.last_log_term)
            _position("last log", msg.last_log_index, msg.last_log_term, term)
            if type(msg.prevote) is not bool:
                raise MalformedMessage("prevote must be a bool")
        case VoteResponse():
            request_term = _count("request_term", msg.request_term)
            if type(msg.prevote) is not bool or type(msg.granted) is not bool:
                raise MalformedMessage("prevote and granted must be bools")
            if msg.granted and not msg.prevote and term != request_term:
                raise MalformedMessage("a granted vote must carry the request's term")
            if msg.granted and msg.prevote and term > request_term:
                raise MalformedMessage("a granted prevote cannot come from a higher term")
        case AppendRequest():
            _count("prev_log_index", msg.prev_log_index)
            _count("prev_log_term", msg.prev_log_term)
            _count("leader_commit", msg.leader_commit)
            _count("read_ctx", msg.read_ctx)
            _position("prev log", msg.prev_log_index, msg.prev_log_term, term)
            _entries(msg)
        case AppendResponse():
            _count("match_index", msg.match_index)
            _count("reject_hint_index", msg.reject_hint_index)
            _count("reject_hint_term", msg.reject_hint_term)
            _count("read_ctx", msg.read_ctx)
            if type(msg.success) is not bool:
                raise MalformedMessage("success must be a bool")
            if not msg.success:
                _position("reject hint", msg.reject_hint_index, msg.reject_hint_term, term)
                if msg.reject_hint_index > msg.match_index:
                    raise MalformedMessage("reject hint is above the rejected index")
        case SnapshotRequest():
            _meta(msg.meta, term)
            if type(msg.data) is not bytes:
                raise MalformedMessage("snapshot data must be bytes")
        case SnapshotResponse():
            _count("match_index", msg.match_index)
        case TimeoutNow():
            pass
        case _:
            assert_never(msg)
