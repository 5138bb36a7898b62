"""EntryEncoder writes the same wire bytes protobuf would parse to the same message.

The peer stream hand-encodes appends (each log entry once for all followers);
a follower parses them with the generated classes, so the two must agree on
every field the AppendRequest of Raft section 5.3 carries (term, prevLogIndex,
prevLogTerm, entries[], leaderCommit) and on entry kinds, empty data and
large varints.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from impl._convert import EntryEncoder, append_request_to_pb, encode_entry, peer_message_to_pb
from impl._core import AppendRequest, Entry, EntryKind, TimeoutNow, VoteRequest, VoteResponse
from impl.generated import raft_pb2

_u64 = st.integers(min_value=0, max_value=2**64 - 1)


@st.composite
def appends(draw: st.DrawFn) -> AppendRequest:
    first = draw(st.integers(min_value=1, max_value=2**40))
    count = draw(st.integers(min_value=0, max_value=6))
    entries = tuple(
        Entry(
            first + i,
            draw(_u64),
            draw(st.sampled_from(list(EntryKind))),
            draw(st.binary(max_size=300)),
        )
        for i in range(count)
    )
    return AppendRequest(
        draw(st.text(min_size=1, max_size=8)),
        draw(st.text(min_size=1, max_size=8)),
        draw(_u64),
        draw(_u64),
        draw(_u64),
        entries,
        draw(_u64),
        draw(_u64),
    )


@given(appends())
def test_hand_encoded_append_parses_to_the_generated_message(msg: AppendRequest) -> None:
    enc = EntryEncoder()
    first = enc.append_request(msg)
    assert raft_pb2.AppendRequest.FromString(first) == append_request_to_pb(msg)
    assert enc.append_request(msg) == first  # the cached entry bytes are the same bytes


def test_entry_bytes_parse_back() -> None:
    for entry in (
        Entry(1, 1, EntryKind.NORMAL, b""),
        Entry(127, 128, EntryKind.NOOP, b""),
        Entry(2**63, 2**64 - 1, EntryKind.CONFIG, b"\x00" * 200),
    ):
        pb = raft_pb2.Entry.FromString(encode_entry(entry))
        assert (pb.index, pb.term, pb.data) == (entry.index, entry.term, entry.data)


def test_an_overwritten_entry_is_encoded_again() -> None:
    """Section 5.3: a follower's conflicting entry is replaced; so is a leader's cache entry."""
    enc = EntryEncoder()
    old = AppendRequest("c", "a", 2, 0, 0, (Entry(1, 2, EntryKind.NORMAL, b"old"),), 0, 0)
    new = AppendRequest("c", "a", 3, 0, 0, (Entry(1, 3, EntryKind.NORMAL, b"new"),), 0, 0)
    enc.append_request(old)
    assert raft_pb2.AppendRequest.FromString(enc.append_request(new)) == append_request_to_pb(new)


def test_a_batch_keeps_its_messages_in_order() -> None:
    append = AppendRequest("c", "a", 3, 1, 1, (Entry(2, 3, EntryKind.NORMAL, b"x"),), 1, 0)
    vote = VoteRequest("c", "a", 4, True, 2, 3)
    reply = VoteResponse("c", "a", 4, False, True, 4)
    nudge = TimeoutNow("c", "a", 4)
    msgs: list[AppendRequest | VoteRequest | VoteResponse | TimeoutNow] = [
        append,
        vote,
        append,
        reply,
        nudge,
    ]
    batch = raft_pb2.PeerBatch.FromString(EntryEncoder().peer_batch(list(msgs)))
    assert batch == raft_pb2.PeerBatch(messages=[peer_message_to_pb(m) for m in msgs])
