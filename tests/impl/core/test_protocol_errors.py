"""Refused input changes nothing (the h11 rule). Reference: Raft paper Figure 2 field domains."""

from __future__ import annotations

from typing import Any

import pytest

from impl._core import (
    AppendRequest,
    AppendResponse,
    ConflictingLeader,
    Entry,
    EntryKind,
    MalformedMessage,
    Message,
    ProtocolError,
    RaftCore,
    SnapshotMeta,
    SnapshotRequest,
    SnapshotResponse,
    UnknownSender,
    VoteRequest,
    VoteResponse,
    WrongCluster,
)

from ._harness import CLUSTER, Net, entry


def _observable(core: RaftCore) -> tuple[Any, ...]:
    return (core.status(), core.has_ready(), core.entries_from(core.first_index))


BAD: list[tuple[str, type[ProtocolError], Message]] = [
    ("unknown sender", UnknownSender, VoteRequest(CLUSTER, "n9", 5, False, 0, 0)),
    ("from ourselves", UnknownSender, AppendRequest(CLUSTER, "{self}", 5, 0, 0, (), 0, 0)),
    ("wrong cluster", WrongCluster, VoteRequest("other", "n2", 5, False, 0, 0)),
    ("negative term", MalformedMessage, VoteRequest(CLUSTER, "n2", -1, False, 0, 0)),
    ("negative index", MalformedMessage, AppendRequest(CLUSTER, "n2", 5, -1, 0, (), 0, 0)),
    ("index 0 with a term", MalformedMessage, AppendRequest(CLUSTER, "n2", 5, 0, 1, (), 0, 0)),
    (
        "entries not contiguous",
        MalformedMessage,
        AppendRequest(CLUSTER, "n2", 5, 0, 0, (entry(1, 5), entry(3, 5)), 0, 0),
    ),
    (
        "entries not starting after prev",
        MalformedMessage,
        AppendRequest(CLUSTER, "n2", 5, 0, 0, (entry(2, 5),), 0, 0),
    ),
    (
        "entry term above message term",
        MalformedMessage,
        AppendRequest(CLUSTER, "n2", 5, 0, 0, (entry(1, 6),), 0, 0),
    ),
    (
        "entry terms decreasing",
        MalformedMessage,
        AppendRequest(CLUSTER, "n2", 5, 0, 0, (entry(1, 4), entry(2, 3)), 0, 0),
    ),
    (
        "entry data not bytes",
        MalformedMessage,
        AppendRequest(
            CLUSTER,
            "n2",
            5,
            0,
            0,
            (Entry(1, 5, EntryKind.NORMAL, "s"),),  # type: ignore[arg-type]
            0,
            0,
        ),
    ),
    ("negative commit", MalformedMessage, AppendRequest(CLUSTER, "n2", 5, 0, 0, (), -3, 0)),
    ("last log term above term", MalformedMessage, VoteRequest(CLUSTER, "n2", 2, False, 4, 3)),
    (
        "granted vote for another term",
        MalformedMessage,
        VoteResponse(CLUSTER, "n2", 7, False, True, 6),
    ),
    (
        "reject hint above rejected index",
        MalformedMessage,
        AppendResponse(CLUSTER, "n2", 5, False, 2, 4, 1, 0),
    ),
    ("negative match", MalformedMessage, SnapshotResponse(CLUSTER, "n2", 5, -1)),
    (
        "snapshot term above message term",
        MalformedMessage,
        SnapshotRequest(CLUSTER, "n2", 5, SnapshotMeta(3, 9, ("n1",)), b""),
    ),
    ("bool as a count", MalformedMessage, VoteRequest(CLUSTER, "n2", True, False, 0, 0)),
]


@pytest.mark.parametrize(("name", "error", "message"), BAD, ids=[b[0] for b in BAD])
@pytest.mark.parametrize("who", ["leader", "follower"])
def test_refused_message_changes_nothing(
    name: str, error: type[ProtocolError], message: Message, who: str
) -> None:
    """Every refused input raises its ProtocolError and leaves observable state unchanged."""
    net = Net(3)
    net.elect("n1")
    for i in range(3):
        net.propose(bytes([i]))
    net.run()
    net.heartbeat()
    node_id = "n1" if who == "leader" else "n3"
    core = net[node_id]
    if getattr(message, "sender", None) == "{self}":
        message = AppendRequest(CLUSTER, node_id, 5, 0, 0, (), 0, 0)
    before = _observable(core)
    with pytest.raises(error):
        core.receive(message)
    assert _observable(core) == before


def test_not_a_message_is_refused() -> None:
    net = Net(3)
    before = _observable(net["n1"])
    with pytest.raises(MalformedMessage):
        net["n1"].receive("hello")  # type: ignore[arg-type]
    assert _observable(net["n1"]) == before


def test_second_leader_in_our_term_is_refused() -> None:
    """Reference: section 5.2 (Election Safety) — at most one leader per term."""
    net = Net(3)
    net.elect("n1")
    core = net["n1"]
    before = _observable(core)
    with pytest.raises(ConflictingLeader):
        core.receive(AppendRequest(CLUSTER, "n2", core.term, 0, 0, (), 0, 0))
    assert _observable(core) == before


def test_stale_messages_are_not_errors() -> None:
    """Stale (lower-term) input is valid: it is answered or ignored, never raised."""
    net = Net(3)
    net.elect("n1")
    net["n1"].check_quorum_timeout()
    net["n2"].check_quorum_timeout()
    net["n3"].check_quorum_timeout()
    net.drop_all()
    net.restart("n1")
    net["n2"].check_quorum_timeout()
    net.elect("n2")
    n2 = net["n2"]
    n2.receive(AppendResponse(CLUSTER, "n3", 1, True, 0, 0, 0, 0))
    n2.receive(SnapshotResponse(CLUSTER, "n3", 1, 0))
    n2.receive(AppendRequest(CLUSTER, "n1", 1, 0, 0, (), 0, 0))
    rd = n2.ready()
    (env,) = rd.messages
    assert isinstance(env.message, AppendResponse) and env.message.term == 2
