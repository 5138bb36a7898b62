"""RaftCore: the public, sans-IO Raft state machine (like etcd-io/raft's RawNode).

No I/O, no clock, no randomness. Each public input below is one discrete step
that returns nothing and queues its outputs; ``ready()`` hands them over as
one ``Ready`` batch, which makes the persist -> send -> apply order explicit.
A refused input raises and leaves the core unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, assert_never

from ._base import SnapshotSource
from ._errors import ConflictingLeader, NotLeader, TransferInProgress
from ._members import _Members
from ._membership import Membership
from ._messages import (
    AppendRequest,
    AppendResponse,
    Entry,
    EntryKind,
    HardState,
    Message,
    SnapshotMeta,
    SnapshotRequest,
    SnapshotResponse,
    TimeoutNow,
    VoteRequest,
    VoteResponse,
)
from ._types import CoreConfig, PeerProgress, Ready, Role, StoredState
from ._validate import validate_message

__all__ = ["RaftCore"]


class RaftCore(_Members):
    """RaftCore is one Raft node's protocol logic, driven by its caller.

    Create it from what storage loaded; then feed it inputs (timer firings,
    received messages, proposals, reads, durability and apply reports) and
    drain ``ready()`` after each batch of inputs.
    """

    def __init__(self, config: CoreConfig, stored: StoredState) -> None:
        super().__init__(config, stored)

    # == inputs ==============================================================
    def election_timeout(self) -> None:
        """election_timeout: the election timer fired (the driver checked its version)."""
        self._on_election_timeout()

    def heartbeat_timeout(self) -> None:
        """heartbeat_timeout: a leader sends every follower a heartbeat (others: no-op)."""
        if self._role is Role.LEADER:
            self._broadcast_heartbeat()

    def check_quorum_timeout(self) -> None:
        """check_quorum_timeout: leader steps down without a quorum; follower's lease ends."""
        self._on_check_quorum()

    def receive(self, message: Message) -> None:
        """receive processes one peer message.

        Raises a ``ProtocolError`` (``UnknownSender``, ``WrongCluster``,
        ``MalformedMessage``, ``ConflictingLeader``, ``CommittedConflict``) and
        changes nothing if the message must be refused.
        """
        validate_message(
            message, self._cluster, self._id, self._member_set, (self._leader, self._term)
        )
        term = message.term
        conflict = 0
        if isinstance(message, AppendRequest | SnapshotRequest) and term >= self._term:
            if term == self._term and self._role is Role.LEADER:
                raise ConflictingLeader(
                    f"{message.sender} claims to lead term {term}, which we lead"
                )
            if isinstance(message, AppendRequest):
                conflict = self._append_conflict(message)

        if term > self._term:
            match message:
                case VoteRequest(prevote=True):
                    pass  # a prevote request never changes the receiver (thesis 9.6)
                case AppendRequest() | SnapshotRequest() | TimeoutNow():
                    self._become_follower(term, message.sender)
                case _:
                    self._become_follower(term, None)
        elif term < self._term and not isinstance(message, VoteResponse):
            self._reply_stale(message)
            return

        match message:
            case VoteRequest():
                self._handle_vote_request(message)
            case VoteResponse():
                self._handle_vote_response(message)
            case AppendRequest():
                self._handle_append_request(message, conflict)
            case AppendResponse():
                if self._role is Role.LEADER:
                    self._handle_append_response(message)
            case SnapshotRequest():
                self._handle_snapshot_request(message)
            case SnapshotResponse():
                if self._role is Role.LEADER:
                    self._handle_snapshot_response(message)
            case TimeoutNow():
                self._handle_timeout_now(message)
            case _:
                assert_never(message)
        self._retire_if_removed()

    def _reply_stale(self, message: Message) -> None:
        """_reply_stale rejects a lower-term request with our term (etcd#8501); drops the rest."""
        match message:
            case VoteRequest():
                self._send(
                    message.sender,
                    VoteResponse(
                        self._cluster, self._id, self._term, message.prevote, False, message.term
                    ),
                )
            case AppendRequest():
                self._send(
                    message.sender,
                    AppendResponse(
                        self._cluster,
                        self._id,
                        self._term,
                        False,
                        message.prev_log_index,
                        0,
                        0,
                        0,  # no read ctx: this term's reply must not confirm another term's read
                    ),
                )
            case SnapshotRequest():
                self._send(message.sender, SnapshotResponse(self._cluster, self._id, self._term, 0))
            case VoteResponse() | AppendResponse() | SnapshotResponse() | TimeoutNow():
                pass  # a stale answer or order: nothing to do
            case _:
                assert_never(message)

    def _require_writable(self) -> None:
        """_require_writable refuses a client write off the leader or during a transfer.

        Thesis 3.10, step 1: while a transfer is in progress the leader takes no new client
        requests, so the target can catch up with a log that stops growing and then win the
        election (voters refuse a candidate whose log is shorter than theirs, 5.4.1).
        """
        if self._role is not Role.LEADER:
            raise NotLeader(self._leader)
        if self._transfer_to is not None:
            raise TransferInProgress(self._transfer_to)

    def propose(self, data: bytes) -> int:
        """propose appends a command to the leader's log and returns its index.

        Raises NotLeader(leader_hint) on any other node, TransferInProgress(target) on a
        leader handing over leadership (thesis 3.10); either changes nothing.
        """
        self._require_writable()
        index = self._log.last_index + 1
        self._append_local(Entry(index, self._term, EntryKind.NORMAL, bytes(data)))
        return index

    def propose_many(self, commands: Sequence[bytes]) -> range:
        """propose_many appends several commands at once (one replication round); their indexes.

        Refused as ``propose`` is (NotLeader, TransferInProgress), all or nothing.
        """
        self._require_writable()
        log = self._log
        first = log.last_index + 1
        term = self._term
        normal = EntryKind.NORMAL
        entries = [Entry(first + i, term, normal, bytes(c)) for i, c in enumerate(commands)]
        log.extend(entries, may_hold_config=False)
        if self._progress:
            self._broadcast_append()
        return range(first, first + len(commands))

    def read_index(self, request_id: int) -> None:
        """read_index asks for a linearizable read; released later in ``Ready.reads``.

        Raises NotLeader(leader_hint) on any other node.
        """
        if self._role is not Role.LEADER:
            raise NotLeader(self._leader)
        if self._queue_read(request_id):
            self._send_read_round()

    def transfer_leadership(self, to: str) -> None:
        """transfer_leadership hands leadership to ``to`` once its log is caught up.

        The leader keeps replicating but takes no client writes (``propose`` raises
        TransferInProgress); when ``to`` matches our last index it gets TimeoutNow and
        campaigns without prevote (thesis 3.10). A pending transfer is forgotten at the
        next check_quorum_timeout (or when we stop leading), and writes are taken again.
        """
        if self._role is not Role.LEADER:
            raise NotLeader(self._leader)
        if to == self._id:
            return
        if to not in self._progress:
            raise ValueError(f"cannot transfer leadership to unknown node {to!r}")
        if to not in self._voter_set:
            raise ValueError(f"cannot transfer leadership to {to!r}: not a voter (thesis 4.2.1)")
        self._transfer_to = to
        self._transfer_sent = False
        pr = self._progress[to]
        self._maybe_send_timeout_now(to, pr)
        if not self._transfer_sent:
            self._replicate_to(to, pr)

    def persisted(self, index: int, term: int) -> None:
        """persisted: our log is durable up to ``index`` (whose entry has ``term``).

        A leader counts itself in the commit quorum only up to this point.
        Reports for entries that were overwritten since are ignored.
        """
        self._on_persisted(index, term)

    def applied(self, index: int) -> None:
        """applied: the state machine applied every entry up to ``index``."""
        if index > self._commit:
            raise ValueError(f"applied index {index} is beyond the commit index {self._commit}")
        self._applied = max(self._applied, index)

    def snapshot_taken(self, meta: SnapshotMeta) -> None:
        """snapshot_taken: the driver saved a snapshot up to ``meta.index``; drop those entries.

        ``meta`` must name an applied entry of our log; (index, term) stays as
        the log's base so the next append's consistency check still works.
        """
        if meta.index > self._applied:
            raise ValueError(
                f"snapshot index {meta.index} is beyond the applied index {self._applied}"
            )
        if meta.index <= self._log.base_index:
            return
        if self._log.term_at(meta.index) != meta.term:
            raise ValueError(
                f"snapshot ({meta.index}, term {meta.term}) does not match the log "
                f"(term there: {self._log.term_at(meta.index)})"
            )
        # the configuration at the new base is the one the log says, whatever meta carries
        self._base_config = self._config_at(meta.index)
        self._log.compact(meta.index, meta.term)
        self._refresh_config()

    def snapshot_meta(self, index: int) -> SnapshotMeta:
        """snapshot_meta is the SnapshotMeta for a snapshot up to applied ``index``.

        It carries the configuration in use at ``index`` (thesis 4.1): the latest CONFIG
        entry at or below it, else the one at the log's base. ``index`` must be in the log
        (or its base) and applied.
        """
        term = self._log.term_at(index)
        if term is None or index > self._applied:
            raise ValueError(
                f"no snapshot at {index}: log holds {self._log.base_index}..{self._log.last_index},"
                f" applied {self._applied}"
            )
        config = self._config_at(index)
        return SnapshotMeta(index, term, tuple(config.voters), config)

    # == membership (thesis chapter 4) =========================================
    def add_learner(self, node_id: str, address: str) -> int:
        """add_learner appends a configuration with ``node_id`` as a learner; its log index.

        The learner receives the log but neither votes nor counts (thesis 4.2.1). Raises
        NotLeader, or MembershipChangeError (``reason`` says which rule) and changes nothing.
        """
        return self._add_learner(node_id, address)

    def promote_learner(self, node_id: str) -> int:
        """promote_learner makes a caught-up learner a voter (match >= commit); its log index."""
        return self._promote_learner(node_id)

    def remove_server(self, node_id: str) -> int:
        """remove_server removes a voter or learner; the leader may remove itself (4.2.2).

        A leader that removes itself keeps leading, not counting itself, until the new
        configuration commits, then steps down. The last voter cannot be removed.
        """
        return self._remove_server(node_id)

    def append_sentinel(self) -> int:
        """append_sentinel appends a no-op of the leader's term; its log index.

        A membership change waits until an entry of the leader's own term has committed
        (Ongaro's 2015 fix); a leader elected with a fully committed log has none, so a driver
        whose change was refused for that reason appends one and retries once it commits.
        Raises NotLeader, or MembershipChangeError(BLOCKED) when the log already holds an
        entry of this term.
        """
        return self._append_sentinel()

    @property
    def membership(self) -> Membership:
        """membership is the config in use: latest in the log, else snapshot's, else initial."""
        return self._membership()

    def caught_up_learners(self) -> tuple[str, ...]:
        """caught_up_learners: learners the leader could promote now (empty if not leader).

        A learner qualifies once its match index reached the commit index; none do while a
        change is blocked (a pending change, a transfer, no entry of this term committed).
        """
        return self._caught_up_learners()

    def set_snapshot_source(self, source: SnapshotSource | None) -> None:
        """set_snapshot_source: how the leader gets a snapshot for a follower behind the log."""
        self._snapshot_source = source

    # == outputs =============================================================
    def has_ready(self) -> bool:
        """has_ready: is there anything for the driver to persist, send, apply or do?"""
        hs = self._handed_hs
        return bool(
            self._msgs
            or self._reads_out
            or self._aborted_out
            or self._timer is not None
            or self._role_changed
            or self._snapshot_out is not None
            or self._unstable <= self._log.last_index
            or self._handed_commit < self._commit
            or hs.term != self._term
            or hs.vote != self._vote
            or hs.commit != self._commit
        )

    def ready(self) -> Ready:
        """ready hands over everything queued since the last call, as one batch."""
        hs = self._handed_hs
        hard: HardState | None = None
        if hs.term != self._term or hs.vote != self._vote or hs.commit != self._commit:
            hard = HardState(self._term, self._vote, self._commit)
            self._handed_hs = hard
        log = self._log
        last = log.last_index
        entries: tuple[Entry, ...] = ()
        if self._unstable <= last:
            entries = tuple(log.slice(self._unstable, last + 1))
            self._unstable = last + 1
        committed: tuple[Entry, ...] = ()
        if self._handed_commit < self._commit:
            committed = tuple(log.slice(self._handed_commit + 1, self._commit + 1))
            self._handed_commit = self._commit
        rd = Ready(
            hard_state=hard,
            entries=entries,
            snapshot=self._snapshot_out,
            messages=tuple(self._msgs),
            committed=committed,
            reads=tuple(self._reads_out),
            timer=self._timer,
            role_changed=self._role_changed,
            aborted_reads=tuple(self._aborted_out),
        )
        self._msgs = []
        self._reads_out = []
        self._aborted_out = []
        self._timer = None
        self._role_changed = False
        self._snapshot_out = None
        return rd

    def advance(self, ready: Ready) -> None:
        """advance: the driver made ``ready`` durable, sent it and applied it."""
        if ready.snapshot is not None:
            index = ready.snapshot[0].index
            self._applied = max(self._applied, index)
        if ready.entries:
            last = ready.entries[-1]
            self._on_persisted(last.index, last.term)
        if ready.committed:
            index = ready.committed[-1].index
            if self._applied < index <= self._commit:
                self._applied = index

    # == queries =============================================================
    @property
    def node_id(self) -> str:
        """node_id is this node's id."""
        return self._id

    @property
    def role(self) -> Role:
        """role is the node's current role."""
        return self._role

    @property
    def term(self) -> int:
        """term is the current term."""
        return self._term

    @property
    def voted_for(self) -> str | None:
        """voted_for is who we voted for in the current term."""
        return self._vote

    @property
    def transfer_target(self) -> str | None:
        """transfer_target is the node a leadership transfer in progress hands over to."""
        return self._transfer_to

    @property
    def leader_id(self) -> str | None:
        """leader_id is the leader of the current term as far as we know."""
        return self._leader

    @property
    def commit_index(self) -> int:
        """commit_index is the highest index known committed."""
        return self._commit

    @property
    def applied_index(self) -> int:
        """applied_index is the highest index the driver reported applied."""
        return self._applied

    @property
    def last_index(self) -> int:
        """last_index is the index of the last log entry."""
        return self._log.last_index

    @property
    def last_term(self) -> int:
        """last_term is the term of the last log entry."""
        return self._log.last_term

    @property
    def first_index(self) -> int:
        """first_index is the first index still in the in-memory log."""
        return self._log.first_index

    @property
    def durable_index(self) -> int:
        """durable_index is the highest index known durable on this node."""
        return self._durable

    @property
    def hard_state(self) -> HardState:
        """hard_state is the current persistent state (term, vote, commit)."""
        return HardState(self._term, self._vote, self._commit)

    @property
    def config(self) -> CoreConfig:
        """config is the configuration the core was built with."""
        return self._config

    @property
    def progress(self) -> dict[str, PeerProgress]:
        """progress is the leader's view of each follower (empty on other roles)."""
        return {peer: pr.view() for peer, pr in self._progress.items()}

    def term_at(self, index: int) -> int | None:
        """term_at is the term of the entry at ``index`` (None if compacted or absent)."""
        return self._log.term_at(index)

    def entries_from(self, index: int, max_entries: int | None = None) -> list[Entry]:
        """entries_from returns retained entries from ``index`` (up to ``max_entries``)."""
        hi = self._log.last_index + 1
        if max_entries is not None:
            hi = min(hi, index + max_entries)
        return self._log.slice(index, hi)

    def status(self) -> dict[str, Any]:
        """status is a JSON-friendly snapshot of the observable state."""
        return {
            "id": self._id,
            "role": self._role.value,
            "term": self._term,
            "vote": self._vote,
            "leader": self._leader,
            "commit_index": self._commit,
            "applied_index": self._applied,
            "durable_index": self._durable,
            "first_index": self._log.first_index,
            "last_index": self._log.last_index,
            "last_term": self._log.last_term,
            "pending_reads": len(self._pending_reads),
            "voters": list(self._in_use.voters),
            "learners": list(self._in_use.learners),
            "config_index": self._in_use.index,
            "progress": {
                peer: {
                    "match": v.match,
                    "next": v.next,
                    "state": v.state.value,
                    "inflight": v.inflight,
                    "recent_active": v.recent_active,
                }
                for peer, v in self.progress.items()
            },
        }
