"""_Reads: linearizable reads by ReadIndex (Raft thesis 6.4; the seed's "verify authority").

A read is recorded with the commit index at its arrival and a fresh
read-confirmation number ``ctx``. Heartbeats carry the newest ctx and
followers echo it. A read is released once

* a quorum (counting the leader) acknowledged, in the current term, a ctx at
  least the read's own — i.e. a heartbeat sent *after* the read arrived
  (etcd#20418: a stale read follows from reusing an older confirmation); and
* the leader's sentinel (first entry of its term, or its commit index at
  election) is committed, so the commit index covers every write committed
  before the read began.

Many reads share one round: a heartbeat carries the newest ctx and confirms
every read with a smaller one.
"""

from __future__ import annotations

from ._base import _CoreBase
from ._progress import Progress
from ._types import ReadState, Role

__all__: list[str] = []


class _Reads(_CoreBase):
    """_Reads owns the pending-read queue and its release rule."""

    def _queue_read(self, request_id: int) -> bool:
        """_queue_read records a read; True if a new heartbeat round should go out now."""
        self._read_seq += 1
        ctx = self._read_seq
        self._pending_reads.append((request_id, self._commit, ctx))
        if not self._peers and self._is_voter:
            self._release_reads()  # the only voter: it is its own quorum
            return False
        if self._read_round == 0:
            self._read_round = ctx
            return True
        return False

    def _on_read_ack(self, pr: Progress, ctx: int) -> bool:
        """_on_read_ack records that a follower confirmed our leadership up to ``ctx``.

        Returns True if reads are still waiting for a round that has not been
        sent yet (the caller then sends one).
        """
        pr.read_ack = max(pr.read_ack, ctx)
        self._release_reads()
        if self._read_round and self._confirmed_ctx() >= self._read_round:
            # the round in flight is confirmed; start another for later reads
            self._read_round = 0
            if self._pending_reads:
                self._read_round = self._read_seq
                return True
        return False

    def _confirmed_ctx(self) -> int:
        """_confirmed_ctx: the largest ctx acknowledged by a quorum of the voters in use.

        The leader always agrees with itself, but counts only while it is a voter (a leader
        that removed itself, thesis 4.2.2); learners never count (thesis 4.2.1).
        """
        if not self._peers and self._is_voter:
            return self._read_seq
        voters = self._voter_set
        acks = [pr.read_ack for peer, pr in self._progress.items() if peer in voters]
        if self._is_voter:
            acks.append(self._read_seq)
        return self._quorum_value(acks)

    def _release_reads(self) -> None:
        """_release_reads moves every confirmed read to the output, oldest first."""
        if self._role is not Role.LEADER or not self._pending_reads:
            return
        if self._commit < self._sentinel:
            return  # thesis 6.4 step 1: wait for an entry of our term to commit
        confirmed = self._confirmed_ctx()
        pending = self._pending_reads
        floor = self._sentinel
        while pending and pending[0][2] <= confirmed:
            request_id, index, _ctx = pending.popleft()
            self._reads_out.append(ReadState(request_id, max(index, floor)))
