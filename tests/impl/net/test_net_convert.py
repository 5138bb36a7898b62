"""Conversion core dataclass <-> raft.proto is lossless, and bad protobufs are refused."""

from __future__ import annotations

import pytest

from impl._convert import (
    MalformedProtoError,
    SnapshotAssembler,
    append_request_from_pb,
    append_request_to_pb,
    append_response_from_pb,
    append_response_to_pb,
    snapshot_chunks,
    snapshot_response_from_pb,
    snapshot_response_to_pb,
    timeout_now_from_pb,
    timeout_now_to_pb,
    vote_request_from_pb,
    vote_request_to_pb,
    vote_response_from_pb,
    vote_response_to_pb,
)
from impl._core import (
    AppendRequest,
    AppendResponse,
    Entry,
    EntryKind,
    SnapshotMeta,
    SnapshotRequest,
    SnapshotResponse,
    TimeoutNow,
    VoteRequest,
    VoteResponse,
)
from impl.generated import raft_pb2

BIG = 2**63 + 5  # uint64 range, beyond int64


def wire(pb: object) -> bytes:
    data: bytes = pb.SerializeToString()  # type: ignore[attr-defined]
    return data


def test_vote_round_trip() -> None:
    req = VoteRequest("c", "n1", 7, True, BIG, 6)
    assert vote_request_from_pb(raft_pb2.VoteRequest.FromString(wire(vote_request_to_pb(req)))) == (
        req
    )
    resp = VoteResponse("c", "n2", 8, False, True, 7)
    pb = raft_pb2.VoteResponse.FromString(wire(vote_response_to_pb(resp)))
    assert vote_response_from_pb(pb) == resp


def test_append_round_trip_with_every_entry_kind() -> None:
    entries = (
        Entry(5, 2, EntryKind.NOOP, b""),
        Entry(6, 2, EntryKind.NORMAL, b"\x00\xffcmd"),
        Entry(7, 3, EntryKind.CONFIG, b"cfg"),
    )
    req = AppendRequest("c", "n1", 3, 4, 2, entries, 6, 99)
    back = append_request_from_pb(
        raft_pb2.AppendRequest.FromString(wire(append_request_to_pb(req)))
    )
    assert back == req
    assert all(isinstance(e.kind, EntryKind) for e in back.entries)
    heartbeat = AppendRequest("c", "n1", 3, 4, 2, (), 6, 0)
    pb_hb = raft_pb2.AppendRequest.FromString(wire(append_request_to_pb(heartbeat)))
    assert append_request_from_pb(pb_hb) == heartbeat
    resp = AppendResponse("c", "n2", 3, False, 4, 2, 1, 99)
    pb = raft_pb2.AppendResponse.FromString(wire(append_response_to_pb(resp)))
    assert append_response_from_pb(pb) == resp


def test_timeout_now_and_snapshot_response_round_trip() -> None:
    msg = TimeoutNow("c", "n1", 4)
    assert timeout_now_from_pb(timeout_now_to_pb(msg)) == msg
    resp = SnapshotResponse("c", "n3", 4, 1000)
    pb = raft_pb2.SnapshotResponse.FromString(wire(snapshot_response_to_pb(resp)))
    assert snapshot_response_from_pb(pb) == resp


@pytest.mark.parametrize("size", [0, 1, 9, 10, 11, 35])
def test_snapshot_chunks_reassemble(size: int) -> None:
    data = bytes(range(256)) * 2
    req = SnapshotRequest("c", "n1", 5, SnapshotMeta(40, 4, ("n1", "n2", "n3")), data[:size])
    chunks = list(snapshot_chunks(req, chunk_size=10))
    assert len(chunks) == max(1, -(-size // 10))
    assert chunks[-1].done and not any(c.done for c in chunks[:-1])
    asm = SnapshotAssembler()
    for chunk in chunks:
        asm.add(raft_pb2.SnapshotChunk.FromString(wire(chunk)))
    assert asm.result() == req


def test_snapshot_stream_with_a_hole_is_refused() -> None:
    req = SnapshotRequest("c", "n1", 5, SnapshotMeta(40, 4, ("n1",)), b"x" * 30)
    chunks = list(snapshot_chunks(req, chunk_size=10))
    asm = SnapshotAssembler()
    asm.add(chunks[0])
    with pytest.raises(MalformedProtoError, match="offset 20, expected 10"):
        asm.add(chunks[2])


def test_snapshot_stream_errors() -> None:
    with pytest.raises(MalformedProtoError, match="empty snapshot stream"):
        SnapshotAssembler().result()
    asm = SnapshotAssembler()
    with pytest.raises(MalformedProtoError, match="no meta"):
        asm.add(raft_pb2.SnapshotChunk(cluster_id="c", sender="n1", term=1, done=True))
    req = SnapshotRequest("c", "n1", 5, SnapshotMeta(40, 4, ("n1",)), b"x" * 30)
    chunks = list(snapshot_chunks(req, chunk_size=10))
    unfinished = SnapshotAssembler()
    unfinished.add(chunks[0])
    with pytest.raises(MalformedProtoError, match="before the last chunk"):
        unfinished.result()
    finished = SnapshotAssembler()
    for chunk in chunks:
        finished.add(chunk)
    with pytest.raises(MalformedProtoError, match="after the last one"):
        finished.add(chunks[0])


def test_unknown_entry_kind_and_empty_sender_are_refused() -> None:
    pb = raft_pb2.AppendRequest(cluster_id="c", sender="n1", term=1)
    pb.entries.add(index=1, term=1, kind=17, data=b"")
    with pytest.raises(MalformedProtoError, match="unknown kind 17"):
        append_request_from_pb(raft_pb2.AppendRequest.FromString(wire(pb)))
    with pytest.raises(MalformedProtoError, match="empty sender"):
        vote_request_from_pb(raft_pb2.VoteRequest(cluster_id="c", term=1))
    with pytest.raises(MalformedProtoError, match="empty cluster_id"):
        vote_response_from_pb(raft_pb2.VoteResponse(sender="n1", term=1))
