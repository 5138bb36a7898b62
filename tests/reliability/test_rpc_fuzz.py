"""Fuzzing the peer-RPC path: the core's ``receive`` and the transport's protobuf conversion.

Hypothesis generates messages with wrong terms, impossible indexes, huge payloads, unknown
senders and other clusters' ids. The rules checked: nothing crashes (only the documented
``ProtocolError`` / ``MalformedProtoError`` families are raised), a refused message leaves
the core exactly as it was, and an accepted one never breaks Raft's per-node invariants.
Reference: Raft paper Figure 2 (receiver implementation rules), section 5.1 (terms never
decrease), 5.4 (committed entries are never overwritten); h11's rule that rejected input
leaves state unchanged.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from impl._convert import (
    MalformedProtoError,
    SnapshotAssembler,
    append_request_from_pb,
    append_response_from_pb,
    snapshot_response_from_pb,
    timeout_now_from_pb,
    vote_request_from_pb,
    vote_response_from_pb,
)
from impl._core import (
    AppendRequest,
    AppendResponse,
    CoreConfig,
    Entry,
    EntryKind,
    HardState,
    Message,
    ProtocolError,
    RaftCore,
    Role,
    SnapshotMeta,
    SnapshotRequest,
    SnapshotResponse,
    StoredState,
    TimeoutNow,
    VoteRequest,
    VoteResponse,
)
from impl._storage import SqliteStorage
from impl.generated import raft_pb2

CLUSTER = "c"
VOTERS = ("n1", "n2", "n3")
TERMS = (1, 1, 2, 2, 3, 3, 3)  # the log of the node under test: index i+1 has TERMS[i]


def _core(leader: bool = False, storage: SqliteStorage | None = None) -> RaftCore:
    entries = [Entry(i + 1, t, EntryKind.NORMAL, b"e%d" % (i + 1)) for i, t in enumerate(TERMS)]
    stored = StoredState(HardState(3, "n2", 4), None, entries)
    if storage is not None:
        storage.save(stored.hard_state, entries)
    core = RaftCore(CoreConfig(node_id="n1", voters=VOTERS, cluster_id=CLUSTER), stored)
    if leader:  # win an election in term 4 and 5 (prevote, then the real vote)
        core.election_timeout()
        core.receive(VoteResponse(CLUSTER, "n2", 3, True, True, 3))
        core.receive(VoteResponse(CLUSTER, "n2", 4, False, True, 4))
        assert core.role is Role.LEADER
    while core.has_ready():
        _drain(core, storage)
    return core


def _drain(core: RaftCore, storage: SqliteStorage | None) -> None:
    """_drain does what the node's driver does with one Ready, storage included."""
    ready = core.ready()
    if storage is not None:
        if ready.snapshot is not None:
            storage.save_snapshot(*ready.snapshot)
        storage.save(ready.hard_state, ready.entries)
    if ready.entries:
        core.persisted(ready.entries[-1].index, ready.entries[-1].term)
    core.advance(ready)


def _fingerprint(core: RaftCore) -> tuple[Any, ...]:
    log = tuple(core.term_at(i) for i in range(core.first_index, core.last_index + 1))
    return (
        core.term,
        core.voted_for,
        core.role,
        core.leader_id,
        core.commit_index,
        core.first_index,
        log,
        core.has_ready(),
    )


# Values that cover the boundaries: negative, zero, around our log and term, and huge.
_ints = st.one_of(
    st.integers(0, 9), st.sampled_from([-1, -(2**63), 2**63, 2**64 + 5, 10**30]), st.booleans()
)
_senders = st.sampled_from(["n2", "n3", "n1", "zz", "", "n2 "])
_clusters = st.sampled_from([CLUSTER, CLUSTER, "other", ""])
_kinds = st.one_of(st.sampled_from(list(EntryKind)), st.integers(-1, 5))
_data = st.one_of(st.binary(max_size=16), st.text(max_size=3))


@st.composite
def _entries(draw: st.DrawFn) -> tuple[Entry, ...]:
    start = draw(_ints)
    n = draw(st.integers(0, 4))
    out = []
    for k in range(n):
        index = start + k if draw(st.booleans()) and isinstance(start, int) else draw(_ints)
        out.append(Entry(index, draw(_ints), draw(_kinds), draw(_data)))  # type: ignore[arg-type]
    return tuple(out)


def _msg(cls: type, *fields: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.builds(cls, _clusters, _senders, *fields)


_meta = st.builds(SnapshotMeta, _ints, _ints, st.sampled_from([VOTERS, (), ("n1",), (1,)]))
_messages: st.SearchStrategy[Message] = st.one_of(
    _msg(VoteRequest, _ints, _ints, _ints, _ints),
    _msg(VoteResponse, _ints, _ints, _ints, _ints),
    _msg(AppendRequest, _ints, _ints, _ints, _entries(), _ints, _ints),
    _msg(AppendResponse, _ints, _ints, _ints, _ints, _ints, _ints),
    _msg(SnapshotRequest, _ints, _meta, _data),
    _msg(SnapshotResponse, _ints, _ints),
    _msg(TimeoutNow, _ints),
)


def _receive_checked(core: RaftCore, msg: Message, storage: SqliteStorage | None = None) -> bool:
    """Deliver msg; True if accepted. Checks the rules of the module docstring either way.

    With ``storage`` the resulting Ready is written to a real SQLite store, so a value the
    core accepts but storage cannot hold (a term beyond 63 bits) is caught too.
    """
    before = _fingerprint(core)
    committed = [core.term_at(i) for i in range(core.first_index, core.commit_index + 1)]
    try:
        core.receive(msg)
    except ProtocolError:
        assert _fingerprint(core) == before, msg
        return False
    assert core.term >= before[0]
    assert core.commit_index >= before[4]
    # committed entries still held are unchanged (a snapshot may compact some away)
    first = max(core.first_index, before[5])
    assert [core.term_at(i) for i in range(first, before[4] + 1)] == committed[first - before[5] :]
    if core.has_ready():
        _drain(core, storage)
    return True


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.booleans(), st.lists(_messages, min_size=1, max_size=4))
def test_receive_never_crashes_and_refusals_change_nothing(
    leader: bool, messages: list[Message]
) -> None:
    storage = SqliteStorage(":memory:", CLUSTER, "n1")
    try:
        core = _core(leader, storage)
        for msg in messages:
            _receive_checked(core, msg, storage)
    finally:
        storage.close()


def test_huge_payload_is_accepted_or_refused_without_crash() -> None:
    """A 4 MiB entry (far above one batch) from the leader: stored, not choked on."""
    big = b"x" * (4 << 20)
    core = _core()
    msg = AppendRequest(CLUSTER, "n2", 3, 7, 3, (Entry(8, 3, EntryKind.NORMAL, big),), 7, 0)
    assert _receive_checked(core, msg)
    assert core.last_index == 8


def test_terms_and_indexes_beyond_63_bits_are_refused_before_storage() -> None:
    """uint64 on the wire, int64 in SQLite: a term of 2**63 must be refused, not crash the node.

    Found by the fuzz test above with real storage: the core adopted the term and the
    driver's SQLite write raised OverflowError, which stops the node.
    """
    huge = 2**63
    for msg in (
        VoteRequest(CLUSTER, "n2", huge, False, 0, 0),
        AppendRequest(CLUSTER, "n2", huge, 7, 3, (), 7, 0),
        SnapshotRequest(CLUSTER, "n2", 3, SnapshotMeta(huge, 3, VOTERS), b""),
        TimeoutNow(CLUSTER, "n2", huge),
    ):
        storage = SqliteStorage(":memory:", CLUSTER, "n1")
        try:
            core = _core(False, storage)
            assert not _receive_checked(core, msg, storage), msg
        finally:
            storage.close()


def test_known_invalid_messages_are_refused_without_change() -> None:
    """A few hand-picked impossible messages, so the fuzz test's refusal branch is known live."""
    bad: list[Message] = [
        # Unknown senders. A stranger's append or snapshot that claims to lead our term or
        # a later one is obeyed (a new learner must follow a leader it has never heard of,
        # thesis 4.2.1; Election Safety makes the claim true), so the strangers refused are
        # one claiming an older term and one asking for votes.
        AppendRequest(CLUSTER, "zz", 2, 0, 0, (), 0, 0),
        VoteRequest(CLUSTER, "zz", 9, False, 7, 3),
        VoteRequest(CLUSTER, "zz", 9, True, 7, 3),
        AppendRequest("other", "n2", 9, 7, 3, (), 7, 0),  # another cluster
        AppendRequest(CLUSTER, "n2", 9, 7, 3, (Entry(9, 9, EntryKind.NORMAL, b""),), 7, 0),
        AppendRequest(CLUSTER, "n2", 9, 0, 3, (), 7, 0),  # index 0 with a term
        AppendRequest(CLUSTER, "n2", 2, 7, 3, (), 7, 0),  # log term above message term
        VoteRequest(CLUSTER, "n2", -1, False, 0, 0),
        VoteResponse(CLUSTER, "n2", 9, False, True, 4),  # granted with another term
        SnapshotRequest(CLUSTER, "n2", 9, SnapshotMeta(5, 10, VOTERS), b""),
        TimeoutNow(CLUSTER, "n1", 9),  # from ourselves
    ]
    for leader in (False, True):
        for msg in bad:
            core = _core(leader)
            assert not _receive_checked(core, msg), msg


def test_committed_entry_is_never_overwritten_by_a_conflicting_append() -> None:
    """Reference: section 5.4 (State Machine Safety): commit 4 is known, entry 4 has term 2."""
    core = _core()
    rewrite = AppendRequest(CLUSTER, "n2", 9, 3, 2, (Entry(4, 9, EntryKind.NORMAL, b"evil"),), 4, 0)
    assert not _receive_checked(core, rewrite)
    assert core.term_at(4) == 2


# ---------------------------------------------------------------- protobuf conversion

_u64 = st.one_of(st.integers(0, 9), st.just(2**64 - 1), st.integers(0, 2**64 - 1))
_pb_kind = st.integers(-3, 7)
_pb_str = st.sampled_from(["", "n2", "n3", "zz", CLUSTER, "other", "\x00", "é" * 3])


@st.composite
def _pb_entries(draw: st.DrawFn) -> list[raft_pb2.Entry]:
    return [
        raft_pb2.Entry(
            index=draw(_u64),
            term=draw(_u64),
            kind=draw(_pb_kind),  # type: ignore[arg-type]
            data=draw(st.binary(max_size=8)),
        )
        for _ in range(draw(st.integers(0, 3)))
    ]


@st.composite
def _pb_messages(draw: st.DrawFn) -> tuple[Any, Any]:
    common: dict[str, Any] = {
        "cluster_id": draw(_pb_str),
        "sender": draw(_pb_str),
        "term": draw(_u64),
    }
    which = draw(st.integers(0, 5))
    if which == 0:
        pb: Any = raft_pb2.VoteRequest(
            prevote=draw(st.booleans()),
            last_log_index=draw(_u64),
            last_log_term=draw(_u64),
            **common,
        )
        return vote_request_from_pb, pb
    if which == 1:
        pb = raft_pb2.VoteResponse(
            prevote=draw(st.booleans()),
            granted=draw(st.booleans()),
            request_term=draw(_u64),
            **common,
        )
        return vote_response_from_pb, pb
    if which == 2:
        pb = raft_pb2.AppendRequest(
            prev_log_index=draw(_u64),
            prev_log_term=draw(_u64),
            entries=draw(_pb_entries()),
            leader_commit=draw(_u64),
            read_ctx=draw(_u64),
            **common,
        )
        return append_request_from_pb, pb
    if which == 3:
        pb = raft_pb2.AppendResponse(
            success=draw(st.booleans()),
            match_index=draw(_u64),
            reject_hint_index=draw(_u64),
            reject_hint_term=draw(_u64),
            read_ctx=draw(_u64),
            **common,
        )
        return append_response_from_pb, pb
    if which == 4:
        pb = raft_pb2.SnapshotResponse(match_index=draw(_u64), **common)
        return snapshot_response_from_pb, pb
    return timeout_now_from_pb, raft_pb2.TimeoutNowRequest(**common)


@settings(max_examples=600, deadline=None)
@given(st.booleans(), _pb_messages())
def test_conversion_then_receive_never_crashes(leader: bool, case: tuple[Any, Any]) -> None:
    convert, pb = case
    try:
        msg = convert(pb)
    except MalformedProtoError:
        return
    _receive_checked(_core(leader), msg)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_garbage_bytes_decode_or_are_refused(data: bytes) -> None:
    pairs: tuple[tuple[Any, Any], ...] = (
        (raft_pb2.AppendRequest, append_request_from_pb),
        (raft_pb2.VoteRequest, vote_request_from_pb),
    )
    for cls, convert in pairs:
        try:
            pb = cls.FromString(data)
        except Exception as exc:  # protobuf's DecodeError: the transport answers INVALID_ARGUMENT
            assert type(exc).__name__ == "DecodeError"
            continue
        try:
            msg = convert(pb)
        except MalformedProtoError:
            continue
        _receive_checked(_core(), msg)


@st.composite
def _chunks(draw: st.DrawFn) -> list[raft_pb2.SnapshotChunk]:
    out = []
    for k in range(draw(st.integers(0, 4))):
        meta = raft_pb2.SnapshotMeta(
            index=draw(_u64), term=draw(_u64), voters=draw(st.sampled_from([VOTERS, ()]))
        )
        out.append(
            raft_pb2.SnapshotChunk(
                cluster_id=draw(_pb_str),
                sender=draw(_pb_str),
                term=draw(_u64),
                meta=meta if k == 0 or draw(st.booleans()) else None,
                offset=draw(st.one_of(st.integers(0, 12), _u64)),
                data=draw(st.binary(max_size=6)),
                done=draw(st.booleans()),
            )
        )
    return out


@settings(max_examples=300, deadline=None)
@given(_chunks())
def test_snapshot_stream_reassembly_refuses_holes_and_never_crashes(
    chunks: list[raft_pb2.SnapshotChunk],
) -> None:
    assembler = SnapshotAssembler(max_bytes=64)
    try:
        for chunk in chunks:
            assembler.add(chunk)
        msg = assembler.result()
    except MalformedProtoError:
        return
    # an accepted stream's bytes are exactly the chunks' bytes, in offset order
    assert msg.data == b"".join(c.data for c in chunks)
    _receive_checked(_core(), msg)
