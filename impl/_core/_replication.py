"""_Replication: log replication, commitment, and snapshot shipping (sections 5.3, 5.4, 7).

Leader side: per-follower ``Progress`` (probe / pipelined replicate /
snapshot), batched appends bounded by entries, bytes and in-flight count, and
fast back-off from the follower's (index, term) hint. The leader commits N
only when a quorum holds N — counting itself only up to what the driver
reported durable — and the entry at N is of its current term (Figure 8,
section 5.4.2).

Follower side: the consistency check on (prev_log_index, prev_log_term),
truncation only at a real conflict and never at or below the commit index,
and commit = min(leader_commit, index of last new entry).
"""

from __future__ import annotations

from ._errors import CommittedConflict
from ._membership import Membership
from ._messages import (
    AppendRequest,
    AppendResponse,
    Entry,
    SnapshotMeta,
    SnapshotRequest,
    SnapshotResponse,
    TimeoutNow,
)
from ._progress import Progress
from ._reads import _Reads
from ._types import ProgressState, Role, TimerCommand

__all__: list[str] = []

SNAPSHOT_RETRY_HEARTBEATS = 10
"""A snapshot unanswered for this many heartbeat rounds is sent again."""


class _Replication(_Reads):
    """_Replication owns AppendEntries and InstallSnapshot on both sides."""

    # -- leader: sending -------------------------------------------------
    def _reset_progress(self) -> None:
        nxt = self._log.last_index + 1
        limit = self._config.max_inflight_appends
        self._progress = {}
        for peer in self._replicas:  # voters and learners (thesis 4.2.1)
            pr = Progress(nxt, limit)
            pr.recent_active = True  # grace period: they just elected us
            self._progress[peer] = pr

    def _sync_progress(self) -> None:
        """_sync_progress follows a configuration change on the leader (thesis 4.1).

        A server that left gets nothing more from this leader; a new one gets Progress and a
        probe at our last index at once, so its catch-up starts without waiting for a
        heartbeat (its rejection hint moves ``next`` back to what it holds).
        """
        progress = self._progress
        members = set(self._replicas)
        for gone in [p for p in progress if p not in members]:
            del progress[gone]
        for peer in self._replicas:
            if peer not in progress:
                pr = Progress(self._log.last_index + 1, self._config.max_inflight_appends)
                pr.recent_active = True
                progress[peer] = pr
                self._send_append(peer, pr, allow_empty=True)

    def _send_append(self, peer: str, pr: Progress, allow_empty: bool) -> bool:
        """_send_append sends one append from ``pr.next``; False if nothing was sent."""
        log = self._log
        prev = pr.next - 1
        prev_term = log.term_at(prev)
        if prev_term is None:
            return self._send_snapshot(peer, pr)
        cfg = self._config
        entries = log.batch(pr.next, cfg.max_entries_per_append, cfg.max_bytes_per_append)
        if not entries and not allow_empty:
            return False
        self._send(
            peer,
            AppendRequest(
                self._cluster,
                self._id,
                self._term,
                prev,
                prev_term,
                entries,
                self._commit,
                self._read_seq,
            ),
        )
        pr.sent(prev + len(entries))
        return True

    def _send_snapshot(self, peer: str, pr: Progress) -> bool:
        """_send_snapshot ships the driver's snapshot to a follower behind our compacted log."""
        if self._snapshot_source is None:
            return False  # nothing to send yet; the peer stays behind until a source is set
        meta, data = self._snapshot_source()
        if meta.index < self._log.base_index:
            raise RuntimeError(
                f"snapshot source returned index {meta.index}, below the compacted log base "
                f"{self._log.base_index}"
            )
        if meta.config is None:  # a driver's meta without the configuration: ours at its index
            config = self._config_at(meta.index)
            meta = SnapshotMeta(meta.index, meta.term, tuple(config.voters), config)
        self._send(peer, SnapshotRequest(self._cluster, self._id, self._term, meta, data))
        pr.become_snapshot(meta.index)
        return True

    def _replicate_to(self, peer: str, pr: Progress) -> None:
        """_replicate_to sends as many appends as flow control allows."""
        last = self._log.last_index
        while not pr.is_paused() and pr.next <= last:
            if not self._send_append(peer, pr, allow_empty=False):
                break

    def _broadcast_append(self) -> None:
        """_broadcast_append pushes new entries to every follower that has room."""
        for peer, pr in self._progress.items():
            self._replicate_to(peer, pr)

    def _broadcast_heartbeat(self) -> None:
        """_broadcast_heartbeat sends every follower a heartbeat carrying the newest read ctx.

        A pipelined follower whose appends went unanswered for a whole round
        is assumed to have lost them and is probed again from its match point.
        """
        log = self._log
        for peer, pr in self._progress.items():
            match pr.state:
                case ProgressState.PROBE:
                    pr.probe_sent = False
                    self._send_append(peer, pr, allow_empty=True)
                case ProgressState.REPLICATE:
                    match_term = log.term_at(pr.match)
                    if (pr.inflight and not pr.acked_since_heartbeat) or match_term is None:
                        pr.become_probe()
                        self._send_append(peer, pr, allow_empty=True)
                    else:
                        self._send(
                            peer,
                            AppendRequest(
                                self._cluster,
                                self._id,
                                self._term,
                                pr.match,
                                match_term,
                                (),
                                self._commit,
                                self._read_seq,
                            ),
                        )
                case ProgressState.SNAPSHOT:
                    pr.snapshot_wait += 1
                    if pr.snapshot_wait >= SNAPSHOT_RETRY_HEARTBEATS:
                        self._send_snapshot(peer, pr)
                    else:
                        self._send(
                            peer,
                            AppendRequest(
                                self._cluster,
                                self._id,
                                self._term,
                                log.base_index,
                                log.base_term,
                                (),
                                self._commit,
                                self._read_seq,
                            ),
                        )
            pr.acked_since_heartbeat = False

    def _send_read_round(self) -> None:
        """_send_read_round asks every follower to confirm our leadership for pending reads.

        The heartbeats sit at each follower's known match point, so they never
        disturb probing or pipelining; a follower whose match point is
        compacted away is confirmed by the periodic heartbeat instead.
        """
        log = self._log
        for peer, pr in self._progress.items():
            match_term = log.term_at(pr.match)
            if match_term is None:
                continue
            self._send(
                peer,
                AppendRequest(
                    self._cluster,
                    self._id,
                    self._term,
                    pr.match,
                    match_term,
                    (),
                    self._commit,
                    self._read_seq,
                ),
            )

    # -- leader: commitment ------------------------------------------------
    def _maybe_commit(self) -> None:
        """_maybe_commit advances the commit index to the quorum match, if of our term.

        Reference: section 5.4.2 and Figure 8 — an entry from an earlier term is
        committed only indirectly, by committing one of the current term.
        """
        if self._role is not Role.LEADER:
            return
        # only voters in use count, we ourselves only while we are one (thesis 4.1, 4.2.2)
        voters = self._voter_set
        matches = [pr.match for peer, pr in self._progress.items() if peer in voters]
        if self._is_voter:
            matches.append(self._durable)
        n = self._quorum_value(matches)
        if n > self._commit and self._log.term_at(n) == self._term:
            self._commit = n
            self._release_reads()

    def _on_persisted(self, index: int, term: int) -> None:
        """_on_persisted records that our own log is durable up to ``index``."""
        if index > self._durable and self._log.term_at(index) == term:
            self._durable = index
            self._maybe_commit()
            self._retire_if_removed()

    def _retire_if_removed(self) -> None:
        """_retire_if_removed: a leader outside a committed configuration steps down (4.2.2).

        Until the configuration without it commits it keeps replicating (not counting itself);
        afterwards it is a follower that, not being a voter, never campaigns.
        """
        if self._role is Role.LEADER and not self._is_voter and self._in_use.index <= self._commit:
            self._become_follower(self._term, None)

    # -- leader: responses -------------------------------------------------
    def _handle_append_response(self, msg: AppendResponse) -> None:
        pr = self._progress.get(msg.sender)
        if pr is None:
            return  # a member that has just left (or a leader that never replicated to it)
        pr.recent_active = True
        # The read echo counts before the commit it may bring: a leader whose removal this
        # reply commits steps down below, and must first answer the reads it confirms.
        pr.read_ack = max(pr.read_ack, msg.read_ctx)
        if msg.success:
            if pr.acked(msg.match_index):
                self._maybe_commit()
                self._retire_if_removed()
                if self._role is not Role.LEADER:
                    return  # we removed ourselves and that commit ended our term's work (4.2.2)
            match pr.state:
                case ProgressState.PROBE:
                    if msg.match_index >= pr.next - 1:  # the answer to our probe
                        pr.become_replicate()
                case ProgressState.SNAPSHOT:
                    if pr.match >= pr.pending_snapshot:
                        pr.become_replicate()
                case ProgressState.REPLICATE:
                    pass
            self._replicate_to(msg.sender, pr)
            self._maybe_send_timeout_now(msg.sender, pr)
        else:
            self._handle_rejection(msg, pr)
        if msg.read_ctx and self._on_read_ack(pr, msg.read_ctx):
            self._send_read_round()

    def _handle_rejection(self, msg: AppendResponse, pr: Progress) -> None:
        """_handle_rejection backs ``pr.next`` off using the follower's hint (section 5.3)."""
        rejected = msg.match_index
        match pr.state:
            case ProgressState.REPLICATE:
                if rejected <= pr.match:
                    return  # stale: that point is known to match
            case ProgressState.PROBE:
                if rejected != pr.next - 1:
                    return  # answer to an older probe
            case ProgressState.SNAPSHOT:
                return  # a snapshot is on its way; the heartbeat was only a liveness probe
        hint = msg.reject_hint_index
        if msg.reject_hint_term > 0:
            hint = self._log.last_index_with_term_at_most(hint, msg.reject_hint_term)
        pr.become_probe()
        pr.next = max(min(rejected, hint + 1), pr.match + 1)
        self._send_append(msg.sender, pr, allow_empty=True)

    def _handle_snapshot_response(self, msg: SnapshotResponse) -> None:
        pr = self._progress.get(msg.sender)
        if pr is None:
            return
        pr.recent_active = True
        if pr.acked(msg.match_index):
            self._maybe_commit()
            self._retire_if_removed()
            if self._role is not Role.LEADER:
                return
        if pr.state is ProgressState.SNAPSHOT:
            pr.become_probe()
            pr.next = pr.match + 1
            self._send_append(msg.sender, pr, allow_empty=True)

    def _maybe_send_timeout_now(self, peer: str, pr: Progress) -> None:
        """_maybe_send_timeout_now completes a leadership transfer once the target caught up.

        Reference: thesis 3.10 — the target gets TimeoutNow only when its log
        matches ours, so it can win the election it starts.
        """
        if (
            self._transfer_to == peer
            and not self._transfer_sent
            and pr.match >= self._log.last_index
        ):
            self._transfer_sent = True
            self._send(peer, TimeoutNow(self._cluster, self._id, self._term))

    # -- follower: requests ------------------------------------------------
    def _append_conflict(self, msg: AppendRequest) -> int:
        """_append_conflict: the first conflicting index ``msg`` would overwrite (0 if none).

        Also 0 when the consistency check fails (nothing is overwritten then).
        Raises CommittedConflict — before any state changes — if the conflict
        is at or below our commit index.
        """
        log = self._log
        prev = msg.prev_log_index
        if prev > log.last_index:
            return 0
        if prev >= log.base_index and log.term_at(prev) != msg.prev_log_term:
            return 0
        conflict = log.first_conflict(msg.entries)
        if conflict and conflict <= self._commit:
            raise CommittedConflict(
                f"append from {msg.sender} (term {msg.term}) would overwrite committed "
                f"entry {conflict} (commit index {self._commit})"
            )
        return conflict

    def _follow(self, leader: str) -> None:
        """_follow records that ``leader`` leads our current term and restarts the timer."""
        if self._role is not Role.FOLLOWER:
            self._become_follower(self._term, leader)
        self._leader = leader
        self._leader_heard = True
        self._set_timer(TimerCommand.RESET)

    def _handle_append_request(self, msg: AppendRequest, conflict: int) -> None:
        """Follower side of AppendEntries (Figure 2, receiver implementation)."""
        self._follow(msg.sender)
        log = self._log
        prev = msg.prev_log_index
        if prev > log.last_index:
            self._reject_append(msg, log.last_index, log.last_term)
            return
        if prev >= log.base_index and log.term_at(prev) != msg.prev_log_term:
            hint = log.last_index_with_term_at_most(prev, msg.prev_log_term)
            self._reject_append(msg, hint, log.term_at(hint) or 0)
            return
        entries = msg.entries
        if entries:
            first = entries[0].index
            if conflict:
                log.truncate_from(conflict)  # a truncated CONFIG entry is undone (4.1)
                log.extend(entries[conflict - first :])
                self._unstable = min(self._unstable, conflict)
                self._durable = min(self._durable, conflict - 1)
                self._refresh_config()
            else:
                start = log.last_index + 1 - first
                if start < len(entries):
                    log.extend(entries[start:] if start > 0 else entries)
                    self._refresh_config()
        last_new = max(prev + len(entries), log.base_index)
        new_commit = min(msg.leader_commit, last_new)
        self._commit = max(self._commit, new_commit)
        self._send(
            msg.sender,
            AppendResponse(self._cluster, self._id, self._term, True, last_new, 0, 0, msg.read_ctx),
        )

    def _reject_append(self, msg: AppendRequest, hint_index: int, hint_term: int) -> None:
        self._send(
            msg.sender,
            AppendResponse(
                self._cluster,
                self._id,
                self._term,
                False,
                msg.prev_log_index,
                hint_index,
                hint_term,
                msg.read_ctx,
            ),
        )

    def _handle_snapshot_request(self, msg: SnapshotRequest) -> None:
        """Follower side of InstallSnapshot (section 7)."""
        self._follow(msg.sender)
        meta = msg.meta
        if meta.index <= self._commit:
            self._send(
                msg.sender,
                SnapshotResponse(self._cluster, self._id, self._term, self._commit),
            )
            return
        log = self._log
        # the snapshot's configuration is the one at its base from now on (thesis 4.1)
        self._base_config = meta.config if meta.config is not None else self._legacy(meta)
        if log.term_at(meta.index) == meta.term:
            # our log already holds the snapshot's last entry: keep what follows (section 7)
            log.compact(meta.index, meta.term)
            self._durable = max(self._durable, meta.index)
        else:
            log.reset(meta.index, meta.term)
            self._durable = meta.index
        self._refresh_config()
        self._unstable = max(self._unstable, meta.index + 1)
        self._unstable = min(self._unstable, log.last_index + 1)
        self._commit = meta.index
        self._handed_commit = meta.index
        self._applied = max(self._applied, meta.index)
        self._snapshot_out = (meta, msg.data)
        self._send(msg.sender, SnapshotResponse(self._cluster, self._id, self._term, meta.index))

    def _legacy(self, meta: SnapshotMeta) -> Membership:
        """_legacy: the configuration of a snapshot sent without one (only its voters)."""
        known = self._in_use
        return Membership(
            {v: known.address(v) or self._initial.address(v) or "" for v in meta.voters}
        )

    # -- leader: local appends ---------------------------------------------
    def _append_local(self, entry: Entry) -> None:
        self._log.append(entry)
        if not self._progress:
            return  # commit waits for the driver to report the entry durable
        self._broadcast_append()
