"""_Election: prevote, elections, vote counting, becoming leader, check-quorum (section 5.2).

The seed's rules, in order: a timeout starts a *prevote* that changes neither
term nor vote and forgets the leader (etcd PR #8334); only a prevote quorum,
while still pre-candidate in the same term, moves the node to term + 1 with a
self vote that must be durable before the VoteRequests leave. A vote counts
only if granted and its request term is our current term (etcd#8243).
Quorum is ``len(voters) // 2 + 1`` of all voters — not the seed's
``len(others) >> 1`` which is wrong for even sizes.
"""

from __future__ import annotations

from ._messages import Entry, EntryKind, TimeoutNow, VoteRequest, VoteResponse
from ._replication import _Replication
from ._types import Role, TimerCommand

__all__: list[str] = []


class _Election(_Replication):
    """_Election owns every role transition except following a leader."""

    # -- timers ------------------------------------------------------------
    def _on_election_timeout(self) -> None:
        """The election timer fired: leaders ignore it, others start a (pre)election.

        A learner, a joining node and a server outside the configuration it uses never
        campaign (thesis 4.1, 4.2.1, 4.2.2): for them the timeout does nothing.
        """
        if self._role is Role.LEADER or not self._is_voter:
            return
        if self._config.prevote and self._peers:
            self._start_prevote()
        else:
            self._start_election()

    def _on_check_quorum(self) -> None:
        """Check-quorum (thesis 6.2): a leader that heard from no quorum steps down.

        For a follower the "leader recently heard" window ends, so it will
        grant prevotes again unless the leader speaks up before they arrive.
        """
        if self._role is not Role.LEADER:
            self._leader_heard = False
            return
        self._transfer_to = None
        self._transfer_sent = False
        if not self._config.check_quorum:
            return
        voters = self._voter_set
        active = 1 if self._is_voter else 0
        for peer, pr in self._progress.items():
            if pr.recent_active and peer in voters:
                active += 1  # only voters in use count (thesis 4.1)
            pr.recent_active = False
        if active < self._quorum:
            self._become_follower(self._term, None)

    # -- campaigning -------------------------------------------------------
    def _start_prevote(self) -> None:
        self._set_role(Role.PRECANDIDATE)
        self._leader = None
        self._leader_heard = False
        self._votes = {self._id: True}
        self._set_timer(TimerCommand.RESET)
        req = VoteRequest(
            self._cluster,
            self._id,
            self._term,
            True,
            self._log.last_index,
            self._log.last_term,
        )
        for peer in self._peers:
            self._send(peer, req)

    def _start_election(self) -> None:
        """_start_election: term + 1 and a self vote (persisted via Ready before sending)."""
        self._term += 1
        self._vote = self._id
        self._set_role(Role.CANDIDATE)
        self._leader = None
        self._leader_heard = False
        self._votes = {self._id: True}
        self._set_timer(TimerCommand.RESET)
        if not self._peers:
            self._become_leader()
            return
        req = VoteRequest(
            self._cluster,
            self._id,
            self._term,
            False,
            self._log.last_index,
            self._log.last_term,
        )
        for peer in self._peers:
            self._send(peer, req)

    def _become_leader(self) -> None:
        """_become_leader: the seed's steps (stop timer, sentinel, reset progress and reads)."""
        self._set_role(Role.LEADER)
        self._leader = self._id
        self._votes = {}
        self._set_timer(TimerCommand.STOP)
        self._transfer_to = None
        self._transfer_sent = False
        self._reset_progress()
        log = self._log
        if self._commit < log.last_index:
            sentinel = log.last_index + 1
            log.append(Entry(sentinel, self._term, EntryKind.NOOP, b""))
            self._sentinel = sentinel
        else:
            self._sentinel = self._commit
        self._read_round = 0
        for peer, pr in self._progress.items():
            self._send_append(peer, pr, allow_empty=True)

    # -- votes -------------------------------------------------------------
    def _handle_vote_request(self, msg: VoteRequest) -> None:
        """Answer a (pre)vote. Terms below ours were already rejected by the caller.

        Reference: section 5.2 (one vote per term, first come first served) and
        5.4.1 (election restriction). A prevote changes nothing here; a real
        vote is persisted (via Ready) before the reply leaves and restarts
        our election timer.
        """
        up_to_date = self._log.is_up_to_date(msg.last_log_index, msg.last_log_term)
        if msg.prevote:
            sticky = self._config.check_quorum and (self._role is Role.LEADER or self._leader_heard)
            granted = up_to_date and not sticky
        else:
            granted = up_to_date and self._vote in (None, msg.sender)
            if granted:
                if self._role is Role.PRECANDIDATE:
                    # granting a vote cancels our own election in flight (the seed)
                    self._become_follower(self._term, None)
                self._vote = msg.sender
                self._set_timer(TimerCommand.RESET)
        self._send(
            msg.sender,
            VoteResponse(self._cluster, self._id, self._term, msg.prevote, granted, msg.term),
        )

    def _handle_vote_response(self, msg: VoteResponse) -> None:
        """Count a (pre)vote for the election we are running now, if it is one."""
        if msg.request_term != self._term:
            return
        if msg.prevote:
            if self._role is not Role.PRECANDIDATE:
                return
        elif self._role is not Role.CANDIDATE:
            return
        if msg.sender in self._votes or msg.sender not in self._voter_set:
            return  # a second answer, or from a server that does not vote in our config
        self._votes[msg.sender] = msg.granted
        granted = sum(1 for v in self._votes.values() if v)
        rejected = len(self._votes) - granted
        if granted >= self._quorum:
            if msg.prevote:
                self._start_election()
            else:
                self._become_leader()
        elif rejected > len(self._voters) - self._quorum:
            # a quorum is impossible now; the election timer keeps running
            self._become_follower(self._term, None)

    def _handle_timeout_now(self, msg: TimeoutNow) -> None:
        """TimeoutNow from our leader: campaign at once, skipping prevote (thesis 3.10)."""
        if self._role is Role.LEADER or self._leader not in (None, msg.sender):
            return
        if not self._is_voter:
            return  # only a voter of its configuration campaigns (thesis 4.1)
        self._start_election()
