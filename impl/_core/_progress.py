"""Progress: the leader's per-follower replication and flow-control state.

Like etcd-io/raft's tracker.Progress: a follower is probed one append at a
time until its match point is known, then appends are pipelined with at most
``max_inflight`` unacknowledged batches; a follower behind the compacted log
gets a snapshot. ``match`` never decreases (PySyncObj #166/#167).
"""

from __future__ import annotations

from collections import deque

from ._types import PeerProgress, ProgressState

__all__ = ["Progress"]


class Progress:
    """Progress tracks one follower from the leader's side."""

    __slots__ = (
        "acked_since_heartbeat",
        "inflight",
        "match",
        "max_inflight",
        "next",
        "pending_snapshot",
        "probe_sent",
        "read_ack",
        "recent_active",
        "snapshot_wait",
        "state",
    )

    def __init__(self, next_index: int, max_inflight: int) -> None:
        self.match = 0
        self.next = next_index
        self.state = ProgressState.PROBE
        self.max_inflight = max_inflight
        # last index of each unacknowledged pipelined append, oldest first
        self.inflight: deque[int] = deque()
        self.probe_sent = False
        self.pending_snapshot = 0
        self.snapshot_wait = 0
        self.recent_active = False
        self.acked_since_heartbeat = False
        self.read_ack = 0

    def view(self) -> PeerProgress:
        """view is an immutable copy for queries and status output."""
        return PeerProgress(
            self.match, self.next, self.state, len(self.inflight), self.recent_active
        )

    def is_paused(self) -> bool:
        """is_paused: may the leader not send another append carrying entries right now?"""
        match self.state:
            case ProgressState.PROBE:
                return self.probe_sent
            case ProgressState.REPLICATE:
                return len(self.inflight) >= self.max_inflight
            case ProgressState.SNAPSHOT:
                return True

    def become_probe(self) -> None:
        """become_probe restarts probing just after the known match point."""
        if self.state is ProgressState.SNAPSHOT:
            self.next = max(self.match, self.pending_snapshot) + 1
        else:
            self.next = self.match + 1
        self.state = ProgressState.PROBE
        self.inflight.clear()
        self.probe_sent = False
        self.pending_snapshot = 0

    def become_replicate(self) -> None:
        """become_replicate starts pipelining right after the match point."""
        self.state = ProgressState.REPLICATE
        self.next = self.match + 1
        self.inflight.clear()
        self.probe_sent = False

    def become_snapshot(self, snapshot_index: int) -> None:
        """become_snapshot waits for the follower to install the snapshot at ``snapshot_index``."""
        self.state = ProgressState.SNAPSHOT
        self.pending_snapshot = snapshot_index
        self.snapshot_wait = 0
        self.inflight.clear()
        self.probe_sent = False

    def sent(self, last_index: int) -> None:
        """sent records an append whose last entry is ``last_index``."""
        match self.state:
            case ProgressState.REPLICATE:
                if last_index >= self.next:
                    self.next = last_index + 1
                    self.inflight.append(last_index)
            case ProgressState.PROBE:
                self.probe_sent = True
            case ProgressState.SNAPSHOT:
                pass

    def acked(self, match_index: int) -> bool:
        """acked records a successful append up to ``match_index``; True if match moved."""
        self.probe_sent = False
        inflight = self.inflight
        while inflight and inflight[0] <= match_index:
            inflight.popleft()
            self.acked_since_heartbeat = True
        if match_index > self.match:
            self.acked_since_heartbeat = True
            self.match = match_index
            if self.next <= match_index:
                self.next = match_index + 1
            return True
        return False
