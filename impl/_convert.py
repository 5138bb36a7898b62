"""Conversion between impl._core's frozen message dataclasses and raft.proto.

The wire format mirrors the dataclasses field for field, so conversion is a
plain copy plus validation of what protobuf cannot express (an unknown entry
kind, an empty sender, a snapshot stream with holes). Anything that does not
convert raises MalformedProtoError and the transport answers INVALID_ARGUMENT
without touching the core.

Snapshots travel as a stream of SnapshotChunk: the first chunk carries the
header (cluster_id, sender, term, meta), every chunk its byte offset, the last
one done=True; SnapshotAssembler checks the offsets so a lost or reordered
chunk is refused rather than silently corrupting the state machine.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import assert_never

from impl._core import (
    AppendRequest,
    AppendResponse,
    Entry,
    EntryKind,
    Membership,
    SnapshotMeta,
    SnapshotRequest,
    SnapshotResponse,
    TimeoutNow,
    VoteRequest,
    VoteResponse,
)
from impl.generated import raft_pb2

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "EntryEncoder",
    "MalformedProtoError",
    "SnapshotAssembler",
    "StreamMessage",
    "append_request_from_pb",
    "append_request_to_pb",
    "append_response_from_pb",
    "append_response_to_pb",
    "encode_entry",
    "peer_message_from_pb",
    "peer_message_header",
    "peer_message_to_pb",
    "snapshot_chunks",
    "snapshot_response_from_pb",
    "snapshot_response_to_pb",
    "timeout_now_from_pb",
    "timeout_now_to_pb",
    "vote_request_from_pb",
    "vote_request_to_pb",
    "vote_response_from_pb",
    "vote_response_to_pb",
]

DEFAULT_CHUNK_SIZE = 1 << 20

_KIND_TO_PB: dict[EntryKind, raft_pb2.EntryKind.ValueType] = {}
_PB_TO_KIND: dict[int, EntryKind] = {}
for _kind in EntryKind:
    _value = raft_pb2.EntryKind.Value(f"ENTRY_KIND_{_kind.name}")
    _KIND_TO_PB[_kind] = _value
    _PB_TO_KIND[_value] = _kind


class MalformedProtoError(ValueError):
    """MalformedProtoError: a protobuf that decodes but cannot be a valid message."""


def _check_header(sender: str, cluster_id: str) -> None:
    if not sender:
        raise MalformedProtoError("message has an empty sender")
    if not cluster_id:
        raise MalformedProtoError("message has an empty cluster_id")


# --- entries -----------------------------------------------------------------


def entry_to_pb(entry: Entry) -> raft_pb2.Entry:
    """entry_to_pb copies one log entry."""
    return raft_pb2.Entry(
        index=entry.index, term=entry.term, kind=_KIND_TO_PB[entry.kind], data=entry.data
    )


def entry_from_pb(pb: raft_pb2.Entry) -> Entry:
    """entry_from_pb copies one log entry, refusing unknown kinds."""
    kind = _PB_TO_KIND.get(pb.kind)
    if kind is None:
        raise MalformedProtoError(f"entry {pb.index} has unknown kind {pb.kind}")
    return Entry(index=pb.index, term=pb.term, kind=kind, data=pb.data)


def meta_to_pb(meta: SnapshotMeta) -> raft_pb2.SnapshotMeta:
    """meta_to_pb carries the snapshot's config with it (thesis 4.1, section 7)."""
    pb = raft_pb2.SnapshotMeta(index=meta.index, term=meta.term, voters=list(meta.voters))
    config = meta.config
    if config is not None:
        pb.has_config = True
        pb.config_index = config.index
        pb.voter_addresses.update(config.voters)
        pb.learners.update(config.learners)
    return pb


def meta_from_pb(pb: raft_pb2.SnapshotMeta) -> SnapshotMeta:
    """meta_from_pb: a meta without has_config (an older sender) has voters only."""
    config: Membership | None = None
    if pb.has_config:
        voters = dict(pb.voter_addresses)
        if set(voters) != set(pb.voters):
            raise MalformedProtoError("snapshot config voters differ from the voters list")
        try:
            config = Membership(voters, dict(pb.learners), pb.config_index, True)
        except ValueError as exc:
            raise MalformedProtoError(f"snapshot config: {exc}") from None
    return SnapshotMeta(index=pb.index, term=pb.term, voters=tuple(pb.voters), config=config)


# --- votes -------------------------------------------------------------------


def vote_request_to_pb(msg: VoteRequest) -> raft_pb2.VoteRequest:
    return raft_pb2.VoteRequest(
        cluster_id=msg.cluster_id,
        sender=msg.sender,
        term=msg.term,
        prevote=msg.prevote,
        last_log_index=msg.last_log_index,
        last_log_term=msg.last_log_term,
    )


def vote_request_from_pb(pb: raft_pb2.VoteRequest) -> VoteRequest:
    _check_header(pb.sender, pb.cluster_id)
    return VoteRequest(
        cluster_id=pb.cluster_id,
        sender=pb.sender,
        term=pb.term,
        prevote=pb.prevote,
        last_log_index=pb.last_log_index,
        last_log_term=pb.last_log_term,
    )


def vote_response_to_pb(msg: VoteResponse) -> raft_pb2.VoteResponse:
    return raft_pb2.VoteResponse(
        cluster_id=msg.cluster_id,
        sender=msg.sender,
        term=msg.term,
        prevote=msg.prevote,
        granted=msg.granted,
        request_term=msg.request_term,
    )


def vote_response_from_pb(pb: raft_pb2.VoteResponse) -> VoteResponse:
    _check_header(pb.sender, pb.cluster_id)
    return VoteResponse(
        cluster_id=pb.cluster_id,
        sender=pb.sender,
        term=pb.term,
        prevote=pb.prevote,
        granted=pb.granted,
        request_term=pb.request_term,
    )


# --- appends -----------------------------------------------------------------


def append_request_to_pb(msg: AppendRequest) -> raft_pb2.AppendRequest:
    kinds = _KIND_TO_PB
    pb_entry = raft_pb2.Entry
    return raft_pb2.AppendRequest(
        cluster_id=msg.cluster_id,
        sender=msg.sender,
        term=msg.term,
        prev_log_index=msg.prev_log_index,
        prev_log_term=msg.prev_log_term,
        entries=[
            pb_entry(index=e.index, term=e.term, kind=kinds[e.kind], data=e.data)
            for e in msg.entries
        ],
        leader_commit=msg.leader_commit,
        read_ctx=msg.read_ctx,
    )


def append_request_from_pb(pb: raft_pb2.AppendRequest) -> AppendRequest:
    _check_header(pb.sender, pb.cluster_id)
    kinds = _PB_TO_KIND
    entries: list[Entry] = []
    for e in pb.entries:
        kind = kinds.get(e.kind)
        if kind is None:
            raise MalformedProtoError(f"entry {e.index} has unknown kind {e.kind}")
        entries.append(Entry(index=e.index, term=e.term, kind=kind, data=e.data))
    return AppendRequest(
        cluster_id=pb.cluster_id,
        sender=pb.sender,
        term=pb.term,
        prev_log_index=pb.prev_log_index,
        prev_log_term=pb.prev_log_term,
        entries=tuple(entries),
        leader_commit=pb.leader_commit,
        read_ctx=pb.read_ctx,
    )


def append_response_to_pb(msg: AppendResponse) -> raft_pb2.AppendResponse:
    return raft_pb2.AppendResponse(
        cluster_id=msg.cluster_id,
        sender=msg.sender,
        term=msg.term,
        success=msg.success,
        match_index=msg.match_index,
        reject_hint_index=msg.reject_hint_index,
        reject_hint_term=msg.reject_hint_term,
        read_ctx=msg.read_ctx,
    )


def append_response_from_pb(pb: raft_pb2.AppendResponse) -> AppendResponse:
    _check_header(pb.sender, pb.cluster_id)
    return AppendResponse(
        cluster_id=pb.cluster_id,
        sender=pb.sender,
        term=pb.term,
        success=pb.success,
        match_index=pb.match_index,
        reject_hint_index=pb.reject_hint_index,
        reject_hint_term=pb.reject_hint_term,
        read_ctx=pb.read_ctx,
    )


# --- snapshots ---------------------------------------------------------------


def snapshot_chunks(
    msg: SnapshotRequest, chunk_size: int = DEFAULT_CHUNK_SIZE
) -> Iterator[raft_pb2.SnapshotChunk]:
    """snapshot_chunks splits a SnapshotRequest into a stream (at least one chunk)."""
    if chunk_size <= 0:
        raise ValueError("chunk_size must be positive")
    data = msg.data
    offset = 0
    first = True
    while True:
        piece = data[offset : offset + chunk_size]
        done = offset + len(piece) >= len(data)
        if first:
            yield raft_pb2.SnapshotChunk(
                cluster_id=msg.cluster_id,
                sender=msg.sender,
                term=msg.term,
                meta=meta_to_pb(msg.meta),
                offset=offset,
                data=piece,
                done=done,
            )
            first = False
        else:
            yield raft_pb2.SnapshotChunk(offset=offset, data=piece, done=done)
        offset += len(piece)
        if done:
            return


class SnapshotAssembler:
    """SnapshotAssembler rebuilds a SnapshotRequest from its chunks, in order."""

    def __init__(self, max_bytes: int = 1 << 31) -> None:
        self._header: raft_pb2.SnapshotChunk | None = None
        self._parts: list[bytes] = []
        self._size = 0
        self._done = False
        self._max = max_bytes

    def add(self, chunk: raft_pb2.SnapshotChunk) -> None:
        """add one chunk; raises MalformedProtoError on a hole, overlap or late chunk."""
        if self._done:
            raise MalformedProtoError("snapshot chunk after the last one")
        if self._header is None:
            _check_header(chunk.sender, chunk.cluster_id)
            if not chunk.HasField("meta"):
                raise MalformedProtoError("first snapshot chunk has no meta")
            self._header = chunk
        if chunk.offset != self._size:
            raise MalformedProtoError(
                f"snapshot chunk at offset {chunk.offset}, expected {self._size}"
            )
        self._size += len(chunk.data)
        if self._size > self._max:
            raise MalformedProtoError(f"snapshot larger than {self._max} bytes")
        self._parts.append(chunk.data)
        self._done = chunk.done

    def result(self) -> SnapshotRequest:
        """result returns the whole request; the stream must have ended with done."""
        if self._header is None:
            raise MalformedProtoError("empty snapshot stream")
        if not self._done:
            raise MalformedProtoError("snapshot stream ended before the last chunk")
        h = self._header
        return SnapshotRequest(
            cluster_id=h.cluster_id,
            sender=h.sender,
            term=h.term,
            meta=meta_from_pb(h.meta),
            data=b"".join(self._parts),
        )


def snapshot_response_to_pb(msg: SnapshotResponse) -> raft_pb2.SnapshotResponse:
    return raft_pb2.SnapshotResponse(
        cluster_id=msg.cluster_id, sender=msg.sender, term=msg.term, match_index=msg.match_index
    )


def snapshot_response_from_pb(pb: raft_pb2.SnapshotResponse) -> SnapshotResponse:
    _check_header(pb.sender, pb.cluster_id)
    return SnapshotResponse(
        cluster_id=pb.cluster_id, sender=pb.sender, term=pb.term, match_index=pb.match_index
    )


# --- leadership transfer -----------------------------------------------------


def timeout_now_to_pb(msg: TimeoutNow) -> raft_pb2.TimeoutNowRequest:
    return raft_pb2.TimeoutNowRequest(cluster_id=msg.cluster_id, sender=msg.sender, term=msg.term)


def timeout_now_from_pb(pb: raft_pb2.TimeoutNowRequest) -> TimeoutNow:
    _check_header(pb.sender, pb.cluster_id)
    return TimeoutNow(cluster_id=pb.cluster_id, sender=pb.sender, term=pb.term)


# --- the peer stream -----------------------------------------------------------

StreamMessage = VoteRequest | VoteResponse | AppendRequest | AppendResponse | TimeoutNow


def peer_message_to_pb(msg: StreamMessage) -> raft_pb2.PeerMessage:
    """peer_message_to_pb wraps one message for a PeerBatch (snapshots never go there)."""
    match msg:
        case AppendRequest():
            return raft_pb2.PeerMessage(append_request=append_request_to_pb(msg))
        case AppendResponse():
            return raft_pb2.PeerMessage(append_response=append_response_to_pb(msg))
        case VoteRequest():
            return raft_pb2.PeerMessage(vote_request=vote_request_to_pb(msg))
        case VoteResponse():
            return raft_pb2.PeerMessage(vote_response=vote_response_to_pb(msg))
        case TimeoutNow():
            return raft_pb2.PeerMessage(timeout_now=timeout_now_to_pb(msg))
        case _:
            assert_never(msg)


def peer_message_header(pb: raft_pb2.PeerMessage) -> tuple[str, str]:
    """peer_message_header returns (cluster_id, sender) of the wrapped message.

    Raises MalformedProtoError for a PeerMessage with nothing in it.
    """
    which = pb.WhichOneof("body")
    if which is None:
        raise MalformedProtoError("peer message carries no message")
    inner = getattr(pb, which)
    return str(inner.cluster_id), str(inner.sender)


def peer_message_from_pb(pb: raft_pb2.PeerMessage) -> StreamMessage:
    """peer_message_from_pb unwraps and validates one message of a PeerBatch."""
    which = pb.WhichOneof("body")
    match which:
        case "append_request":
            return append_request_from_pb(pb.append_request)
        case "append_response":
            return append_response_from_pb(pb.append_response)
        case "vote_request":
            return vote_request_from_pb(pb.vote_request)
        case "vote_response":
            return vote_response_from_pb(pb.vote_response)
        case "timeout_now":
            return timeout_now_from_pb(pb.timeout_now)
        case _:
            raise MalformedProtoError("peer message carries no message")


# --- hand-encoded appends for the peer stream ------------------------------------
#
# Why: building one raft_pb2.Entry per entry per follower was the largest single
# item of the leader's profile at high concurrency (about 13 us per entry, paid
# once per follower). An entry's wire bytes do not depend on the follower, so
# EntryEncoder writes them once, by the protobuf wire rules (varints and
# length-delimited fields, which a parser accepts in any order), and every
# append that carries the entry reuses them.


def _varint(n: int) -> bytes:
    if n < 0x80:
        return _SMALL_VARINTS[n]
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


_SMALL_VARINTS = [bytes((i,)) for i in range(0x80)]


def _len_field(tag: int, payload: bytes) -> bytes:
    """_len_field is one length-delimited field: (tag << 3 | 2), length, payload."""
    return _varint(tag << 3 | 2) + _varint(len(payload)) + payload


def encode_entry(entry: Entry) -> bytes:
    """encode_entry writes raft_pb2.Entry's wire bytes for entry.

    Index and term are always written (a parser reads an explicit zero as the
    default); kind and data only when set, as protobuf itself does.
    """
    out = b"\x08" + _varint(entry.index) + b"\x10" + _varint(entry.term)
    kind = _KIND_INT[entry.kind]
    if kind:
        out += b"\x18" + _varint(kind)
    data = entry.data
    if data:
        out += b"\x22" + _varint(len(data)) + data
    return out


_KIND_INT: dict[EntryKind, int] = {k: int(v) for k, v in _KIND_TO_PB.items()}


class EntryEncoder:
    """EntryEncoder serialises appends, encoding each log entry once for all followers.

    The cache maps an index to (the Entry object, its field bytes); a hit needs
    the very same object, so an entry overwritten at that index is re-encoded.
    """

    def __init__(self, max_cached: int = 8192) -> None:
        self._cache: dict[int, tuple[Entry, bytes]] = {}
        self._max_cached = max_cached

    def _entry_field(self, entry: Entry) -> bytes:
        hit = self._cache.get(entry.index)
        if hit is not None and hit[0] is entry:
            return hit[1]
        body = encode_entry(entry)
        field = b"\x32" + _varint(len(body)) + body
        if len(self._cache) >= self._max_cached:
            self._cache.clear()
        self._cache[entry.index] = (entry, field)
        return field

    def append_request(self, msg: AppendRequest) -> bytes:
        """append_request returns the wire bytes of append_request_to_pb(msg)."""
        head = raft_pb2.AppendRequest(
            cluster_id=msg.cluster_id,
            sender=msg.sender,
            term=msg.term,
            prev_log_index=msg.prev_log_index,
            prev_log_term=msg.prev_log_term,
            leader_commit=msg.leader_commit,
            read_ctx=msg.read_ctx,
        ).SerializeToString()
        if not msg.entries:
            return head
        field = self._entry_field
        return head + b"".join([field(e) for e in msg.entries])

    def peer_message(self, msg: StreamMessage) -> bytes:
        """peer_message returns the wire bytes of peer_message_to_pb(msg)."""
        if isinstance(msg, AppendRequest):
            return _len_field(3, self.append_request(msg))
        data: bytes = peer_message_to_pb(msg).SerializeToString()
        return data

    def peer_batch(self, msgs: list[StreamMessage]) -> bytes:
        """peer_batch returns the wire bytes of a PeerBatch carrying msgs in order."""
        return b"".join([_len_field(1, self.peer_message(m)) for m in msgs])
