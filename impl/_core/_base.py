"""_CoreBase: the Raft core's state, its start-up from storage, and shared helpers.

The core is split by concern into a chain of classes (base -> reads ->
replication -> election -> RaftCore). Each layer only calls layers below it,
so every transition is still owned by exactly one place.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from ._log import RaftLog
from ._membership import Membership, decode_config
from ._messages import Entry, Envelope, HardState, Message, SnapshotMeta
from ._progress import Progress
from ._types import CoreConfig, ReadState, Role, StoredState, TimerCommand

__all__ = ["SnapshotSource"]

SnapshotSource = Callable[[], tuple[SnapshotMeta, bytes]]
"""SnapshotSource returns the driver's latest snapshot (meta and state-machine bytes)."""


class _CoreBase:
    """_CoreBase owns every field of the core; subclasses add behaviour only."""

    def __init__(self, config: CoreConfig, stored: StoredState) -> None:
        self._config = config
        self._id = config.node_id
        self._cluster = config.cluster_id
        # the configuration in use (thesis 4.1): see _refresh_config; set at the end
        self._voters: tuple[str, ...] = ()
        self._voter_set: frozenset[str] = frozenset()
        self._member_set: frozenset[str] = frozenset()
        self._is_voter = False
        self._peers: tuple[str, ...] = ()  # the other voters: who we ask for votes
        self._replicas: tuple[str, ...] = ()  # the other members: who a leader replicates to
        self._quorum = 1
        self._initial = initial_membership(config)
        self._in_use = Membership({})  # replaced by _refresh_config at the end
        self._cfg_entry: Entry | None = None  # the CONFIG entry _in_use came from

        hs = stored.hard_state
        base_index, base_term = 0, 0
        self._base_config = self._initial  # the configuration at the log's base
        if stored.snapshot_meta is not None:
            base_index, base_term = stored.snapshot_meta.index, stored.snapshot_meta.term
            if stored.snapshot_meta.config is not None:
                self._base_config = stored.snapshot_meta.config
        self._log = RaftLog(base_index, base_term)
        expected = base_index + 1
        prev_term = base_term
        for e in stored.entries:
            if e.index != expected or e.term < prev_term:
                raise ValueError(
                    f"stored log is not a valid Raft log at index {e.index} "
                    f"(expected index {expected}, term >= {prev_term})"
                )
            expected += 1
            prev_term = e.term
        self._log.extend(stored.entries)
        if hs.term < self._log.last_term:
            raise ValueError(f"stored term {hs.term} is below the last log term {prev_term}")
        if hs.vote is not None and (type(hs.vote) is not str or not hs.vote):
            raise ValueError(f"stored vote {hs.vote!r} is not a node id")
        if hs.commit > self._log.last_index:
            raise ValueError(
                f"stored commit index {hs.commit} is beyond the last log index "
                f"{self._log.last_index}"
            )

        # persistent state (section 5, Figure 2)
        self._term = hs.term
        self._vote: str | None = hs.vote
        self._commit = max(hs.commit, base_index)
        # volatile state
        self._role = Role.FOLLOWER
        self._leader: str | None = None
        self._applied = base_index
        self._durable = self._log.last_index  # highest log index known durable here
        self._leader_heard = False  # heard the current leader since the last check (stickiness)
        self._votes: dict[str, bool] = {}
        # leader state
        self._progress: dict[str, Progress] = {}
        self._sentinel = 0
        self._transfer_to: str | None = None
        self._transfer_sent = False
        # ReadIndex state (thesis 6.4)
        self._read_seq = 0
        self._pending_reads: deque[tuple[int, int, int]] = deque()  # (request_id, index, ctx)
        self._read_round = 0  # ctx of the read round in flight (0 = none)
        # outputs, drained by ready()
        self._msgs: list[Envelope] = []
        self._reads_out: list[ReadState] = []
        self._aborted_out: list[int] = []
        self._timer: TimerCommand | None = None
        self._role_changed = False
        self._snapshot_out: tuple[SnapshotMeta, bytes] | None = None
        # cursors of what was handed to the driver
        self._unstable = self._log.last_index + 1  # first index not yet handed out to persist
        self._handed_commit = base_index  # committed entries up to here were handed out
        self._handed_hs = HardState(hs.term, hs.vote, self._commit)
        self._snapshot_source: SnapshotSource | None = None
        self._refresh_config()

    # -- the configuration in use (thesis 4.1) ----------------------------------
    def _refresh_config(self) -> None:
        """_refresh_config re-reads the configuration in use after the log changed.

        It is the latest CONFIG entry in the log, committed or not; without one, the
        configuration at the log's base (a snapshot's, else the initial one). So appending a
        CONFIG entry switches to it at once and truncating it reverts to the previous one.
        Raises ValueError for an undecodable entry (only a corrupt store can hold one:
        received entries are validated first).
        """
        entry = self._log.latest_config()
        if entry is None:
            if self._cfg_entry is None and self._in_use is self._base_config:
                return
            found = self._base_config
        elif entry is self._cfg_entry:
            return
        else:
            found = decode_config(entry.data, entry.index)
        self._cfg_entry = entry
        self._use_config(found)

    def _use_config(self, config: Membership) -> None:
        me = self._id
        self._in_use = config
        voters = tuple(config.voters)
        self._voters = voters
        self._voter_set = frozenset(voters)
        self._member_set = frozenset(config.members)
        self._is_voter = me in self._voter_set
        self._peers = tuple(v for v in voters if v != me)
        self._replicas = tuple(m for m in config.members if m != me)
        self._quorum = len(voters) // 2 + 1
        if self._role is Role.LEADER:
            self._sync_progress()

    def _sync_progress(self) -> None:
        """_sync_progress adds and drops followers' Progress for a new configuration (leader)."""

    def _config_at(self, index: int) -> Membership:
        """_config_at is the configuration in use at log ``index`` (>= the log's base)."""
        entry = self._log.latest_config(index)
        if entry is None:
            return self._base_config
        if entry is self._cfg_entry:
            return self._in_use
        return decode_config(entry.data, entry.index)

    # -- small shared helpers ---------------------------------------------
    def _send(self, to: str, message: Message) -> None:
        self._msgs.append(Envelope(to, message))

    def _set_timer(self, command: TimerCommand) -> None:
        self._timer = command

    def _set_role(self, role: Role) -> None:
        if role is not self._role:
            self._role = role
            self._role_changed = True

    def _abort_reads(self) -> None:
        """_abort_reads fails every pending read: only a leader may release them."""
        if self._pending_reads:
            self._aborted_out.extend(r[0] for r in self._pending_reads)
            self._pending_reads.clear()
        self._read_round = 0

    def _become_follower(self, term: int, leader: str | None) -> None:
        """_become_follower adopts ``term`` (clearing the vote if it is new) and follows.

        Reference: section 5.1 ("If a server's current term is smaller than the
        other's, it updates its current term"; a candidate or leader that
        discovers a current term reverts to follower). The election timer is
        restarted only if it was stopped (we were leader); otherwise it keeps
        running, so a rejected candidate does not postpone its next try.
        """
        if term > self._term:
            self._term = term
            self._vote = None
        was_leader = self._role is Role.LEADER
        self._set_role(Role.FOLLOWER)
        self._leader = leader
        self._votes = {}
        if was_leader:
            self._progress = {}
            self._transfer_to = None
            self._abort_reads()
            self._set_timer(TimerCommand.RESET)

    def _quorum_value(self, values: list[int]) -> int:
        """_quorum_value: the largest v such that a quorum of ``values`` is >= v.

        ``values`` holds one value per voter in use (a voter without Progress yet counts 0).
        """
        values.sort(reverse=True)
        values.extend([0] * (len(self._voters) - len(values)))
        return values[self._quorum - 1]


def initial_membership(config: CoreConfig) -> Membership:
    """initial_membership is the configuration a node uses before its log or snapshot has one."""
    if config.join:
        return Membership({}, {}, 0, True)
    addresses = config.addresses
    return Membership(
        {v: addresses.get(v, "") for v in config.voters},
        {v: addresses.get(v, "") for v in config.learners},
        0,
        True,
    )
