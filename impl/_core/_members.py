"""_Members: membership change, one server at a time (Raft thesis chapter 4).

The leader changes the configuration by appending a CONFIG entry holding the whole new
configuration; every server uses it as soon as it is in its log (thesis 4.1, see
``_CoreBase._refresh_config``). Changing one voter at a time keeps every majority of the old
configuration overlapping every majority of the new one, provided changes never overlap. So a
leader refuses a change

* during a leadership transfer (the target might lead under a configuration it lacks);
* while an earlier CONFIG entry in its log is uncommitted;
* before an entry of its own term has committed: Ongaro's 2015 raft-dev fix for the
  single-server change bug (a new leader could otherwise append a change conflicting with an
  uncommitted change of an earlier leader, and the two quorums need not overlap). The
  term-change no-op makes this quick.

New servers join as learners and are promoted once caught up to the commit index (4.2.1); a
leader that removes itself keeps leading until that configuration commits, then steps down
(4.2.2, ``_Replication._retire_if_removed``). Every refusal raises before any state changes.
"""

from __future__ import annotations

from ._election import _Election
from ._errors import MembershipChangeError, NotLeader
from ._membership import Membership, MembershipRefusal
from ._messages import Entry, EntryKind
from ._types import Role

__all__: list[str] = []

_BLOCKED = MembershipRefusal.BLOCKED


class _Members(_Election):
    """_Members owns the three membership changes and the membership queries."""

    # -- rules ---------------------------------------------------------------
    def _change_blocked(self) -> str | None:
        """_change_blocked says why the leader may not append a CONFIG entry now, or None."""
        if self._transfer_to is not None:
            return f"leadership transfer to {self._transfer_to} in progress"
        if self._in_use.index > self._commit:
            return f"configuration entry {self._in_use.index} is not committed yet"
        if self._log.term_at(self._commit) != self._term:
            return f"no entry of term {self._term} has committed yet"
        return None

    def _require_change(self, node_id: str) -> Membership:
        """_require_change checks the id and the blocking rules; returns the config in use."""
        if type(node_id) is not str or not node_id or node_id.strip() != node_id:
            raise MembershipChangeError(
                MembershipRefusal.INVALID, f"bad node id {node_id!r}: a non-empty name"
            )
        if self._role is not Role.LEADER:
            raise NotLeader(self._leader)
        reason = self._change_blocked()
        if reason is not None:
            raise MembershipChangeError(_BLOCKED, f"membership change blocked: {reason}")
        return self._in_use

    def _append_config(self, voters: dict[str, str], learners: dict[str, str]) -> int:
        index = self._log.last_index + 1
        config = Membership(voters, learners, index, False)
        self._log.append(Entry(index, self._term, EntryKind.CONFIG, config.encode()))
        # use it at once (thesis 4.1): this adds or drops followers' Progress; the new quorum
        # may already hold more (a slow voter left, or a caught-up one joined), so commit
        # first and the appends carry that commit index
        self._refresh_config()
        self._maybe_commit()
        self._broadcast_append()
        return index

    # -- changes -------------------------------------------------------------
    def _add_learner(self, node_id: str, address: str) -> int:
        config = self._require_change(node_id)
        if type(address) is not str or not address or address.strip() != address:
            raise MembershipChangeError(
                MembershipRefusal.INVALID, f"bad address {address!r} for {node_id}"
            )
        if node_id in config.voters or node_id in config.learners:
            raise MembershipChangeError(
                MembershipRefusal.ALREADY_MEMBER, f"{node_id} is already a member"
            )
        learners = dict(config.learners)
        learners[node_id] = address
        return self._append_config(dict(config.voters), learners)

    def _promote_learner(self, node_id: str) -> int:
        config = self._require_change(node_id)
        if node_id not in config.learners:
            refusal = (
                MembershipRefusal.NOT_LEARNER
                if node_id in config.voters
                else MembershipRefusal.NOT_MEMBER
            )
            raise MembershipChangeError(refusal, f"{node_id} is not a learner")
        match = self._progress[node_id].match
        if match < self._commit:
            raise MembershipChangeError(
                MembershipRefusal.NOT_CAUGHT_UP,
                f"learner {node_id} has matched {match}, behind commit {self._commit}",
            )
        voters = dict(config.voters)
        learners = dict(config.learners)
        voters[node_id] = learners.pop(node_id)
        return self._append_config(voters, learners)

    def _remove_server(self, node_id: str) -> int:
        config = self._require_change(node_id)
        voters = dict(config.voters)
        learners = dict(config.learners)
        if node_id in learners:
            del learners[node_id]
        elif node_id in voters:
            if len(voters) == 1:
                raise MembershipChangeError(
                    MembershipRefusal.LAST_VOTER, f"{node_id} is the last voter"
                )
            del voters[node_id]
        else:
            raise MembershipChangeError(MembershipRefusal.NOT_MEMBER, f"{node_id} is not a member")
        return self._append_config(voters, learners)

    def _append_sentinel(self) -> int:
        """_append_sentinel appends a term-change no-op so a blocked change can go ahead.

        The own-term rule holds every change until an entry of the leader's term commits; a
        leader elected with a fully committed log appends no sentinel (the seed's rule), so on
        an idle cluster nothing of its term would ever commit without a client write.
        """
        if self._role is not Role.LEADER:
            raise NotLeader(self._leader)
        if self._log.term_at(self._log.last_index) == self._term:
            raise MembershipChangeError(
                _BLOCKED, f"the log already holds an entry of term {self._term}"
            )
        index = self._log.last_index + 1
        self._append_local(Entry(index, self._term, EntryKind.NOOP, b""))
        return index

    # -- queries ---------------------------------------------------------------
    def _membership(self) -> Membership:
        config = self._in_use
        committed = config.index <= self._commit
        if config.committed == committed:
            return config
        return Membership(config.voters, config.learners, config.index, committed)

    def _caught_up_learners(self) -> tuple[str, ...]:
        """_caught_up_learners: learners a leader could promote right now (thesis 4.2.1)."""
        if self._role is not Role.LEADER or self._change_blocked() is not None:
            return ()
        commit = self._commit
        progress = self._progress
        return tuple(
            node
            for node in self._in_use.learners
            if node in progress and progress[node].match >= commit
        )
