"""Membership in the node: the change API, auto-promotion and the dynamic peer set.

The core owns the rules (Raft thesis 4.1, 4.2 and Ongaro's 2015 fix: one server
per config entry, none while an earlier one is uncommitted or before an entry
of the leader's term has committed, none during a leadership transfer). This
module is the driver's side of them:

- ``add`` / ``remove`` check what the node can answer more precisely than the
  core's one refusal type (not the leader, already a member, not a member) so
  the gRPC layer can give each its own status code, then call the core;
- after every Ready the leader promotes the learners the core reports as caught
  up (thesis 4.2.1: a new server catches up as a non-voting member first), an
  explicit core input, so the trace records it;
- the peer set the node dials follows the config in use: a new member is dialed
  at once, a removed one keeps receiving until its removal commits (so it
  learns of it, and a leader that removed itself still replicates the entry)
  and is disconnected after.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, assert_never

from impl._config import ConfigError, parse_address, valid_node_id
from impl._core import (
    Membership,
    MembershipChangeError,
    MembershipRefusal,
    NotLeader,
    RaftCore,
    Role,
)
from impl._node_errors import (
    MemberExistsError,
    MembershipBlockedError,
    NotAMemberError,
    NotLeaderError,
)

if TYPE_CHECKING:
    from impl._transport import PeerSenders

__all__ = ["MemberInfo", "Members", "MembershipDriver"]

log = logging.getLogger("raftwright.node")


@dataclass(frozen=True, slots=True)
class MemberInfo:
    """MemberInfo is one member of the config in use, as ListMembers reports it."""

    id: str
    address: str
    voter: bool
    match_index: int  # as the leader knows it; 0 when unknown (or on a follower)


@dataclass(frozen=True, slots=True)
class Members:
    """Members is the config a node uses (thesis 4.1: the latest in its log, committed or not)."""

    voters: Mapping[str, str]
    learners: Mapping[str, str]
    index: int  # log index of the config entry; 0 for the initial config
    committed: bool
    leader: str | None
    members: tuple[MemberInfo, ...] = field(default=())


def _check_member(node_id: str, address: str | None) -> None:
    """_check_member refuses a bad id or address (INVALID_ARGUMENT), as NodeConfig does."""
    if not isinstance(node_id, str) or not valid_node_id(node_id):
        raise ValueError(f"member id {node_id!r} must be 1-64 characters of letters, digits, _ . -")
    if address is not None:
        try:
            parse_address(address)
        except ConfigError as exc:
            raise ValueError(f"member {node_id!r}: {exc}") from None


class MembershipDriver:
    """MembershipDriver is the node's membership bookkeeping (one per Node)."""

    def __init__(self, node_id: str, initial: Mapping[str, str]) -> None:
        self._node_id = node_id
        self._initial = dict(initial)
        # Peers dialed now; removed peers wait here until their removal commits.
        self._dialed: dict[str, str] = {}
        self._leaving: dict[str, int] = {}  # peer -> index of the config that removed it
        self._seen: tuple[int, bool] | None = None

    # ------------------------------------------------------------ views

    @staticmethod
    def current(core: RaftCore) -> Membership:
        """current is the config the core uses (thesis 4.1)."""
        return core.membership

    def addresses(self, core: RaftCore | None) -> dict[str, str]:
        """addresses maps every member of the config in use (voters + learners) to its address."""
        if core is None:
            return dict(self._initial)
        m = self.current(core)
        return {**m.voters, **m.learners}

    def address_of(self, core: RaftCore | None, node_id: str) -> str | None:
        """address_of a member of the config in use, or of a peer still dialed."""
        return self.addresses(core).get(node_id) or self._dialed.get(node_id)

    def view(self, core: RaftCore) -> Members:
        """view is the config in use plus, on the leader, each member's match index."""
        m = self.current(core)
        match: dict[str, int] = {}
        if core.role is Role.LEADER:
            match = {peer: pr.match for peer, pr in core.progress.items()}
            match[self._node_id] = core.last_index
        infos = [MemberInfo(i, a, True, match.get(i, 0)) for i, a in sorted(m.voters.items())] + [
            MemberInfo(i, a, False, match.get(i, 0)) for i, a in sorted(m.learners.items())
        ]
        return Members(
            voters=MappingProxyType(dict(m.voters)),
            learners=MappingProxyType(dict(m.learners)),
            index=m.index,
            committed=m.committed,
            leader=core.leader_id,
            members=tuple(infos),
        )

    # ------------------------------------------------------------ changes

    def _leader_core(self, core: RaftCore) -> None:
        if core.role is not Role.LEADER:
            hint = core.leader_id
            raise NotLeaderError(hint, self.address_of(core, hint) if hint else None)

    def add(self, core: RaftCore, node_id: str, address: str) -> int:
        """add appends the config entry that adds node_id as a learner; returns its index."""
        _check_member(node_id, address)
        self._leader_core(core)
        m = self.current(core)
        taken = {a: i for i, a in {**m.voters, **m.learners}.items() if i != node_id}
        if address in taken:
            raise ValueError(f"address {address} is already used by member {taken[address]!r}")
        return self._change(core, lambda: core.add_learner(node_id, address))

    def remove(self, core: RaftCore, node_id: str) -> int:
        """remove appends the config entry without node_id; returns its index."""
        _check_member(node_id, None)
        self._leader_core(core)
        return self._change(core, lambda: core.remove_server(node_id))

    def _change(self, core: RaftCore, call: Callable[[], int]) -> int:
        """_change calls the core and maps its refusal to the node error of its kind."""
        try:
            return call()
        except NotLeader as exc:
            hint = exc.leader_hint
            raise NotLeaderError(hint, self.address_of(core, hint) if hint else None) from None
        except MembershipChangeError as exc:
            match exc.reason:
                case MembershipRefusal.ALREADY_MEMBER:
                    raise MemberExistsError(str(exc)) from None
                case MembershipRefusal.NOT_MEMBER:
                    raise NotAMemberError(str(exc)) from None
                case MembershipRefusal.INVALID:
                    raise ValueError(str(exc)) from None
                case MembershipRefusal.BLOCKED if self._supply_own_term_entry(core):
                    raise MembershipBlockedError(
                        f"{exc}; appended a no-op of term {core.term}: retry once it commits"
                    ) from None
                case (
                    MembershipRefusal.BLOCKED
                    | MembershipRefusal.LAST_VOTER
                    | MembershipRefusal.NOT_LEARNER
                    | MembershipRefusal.NOT_CAUGHT_UP
                ):
                    raise MembershipBlockedError(str(exc)) from None
                case _:
                    assert_never(exc.reason)

    @staticmethod
    def _supply_own_term_entry(core: RaftCore) -> bool:
        """_supply_own_term_entry appends a no-op when only the 2015 own-term rule blocks.

        A leader elected with a fully committed log appends no term-change entry, so on an
        idle cluster nothing of its term would commit and every change would wait for a
        client write. True when it appended one (the change can be retried once it commits).
        """
        if core.role is not Role.LEADER:
            return False
        term = core.term
        if core.term_at(core.commit_index) == term or core.term_at(core.last_index) == term:
            return False
        core.append_sentinel()
        return True

    # ------------------------------------------------------------ after each Ready

    def promote_caught_up(self, core: RaftCore) -> None:
        """promote_caught_up turns caught-up learners into voters (thesis 4.2.1).

        Only while no config entry is pending: a promotion then would be refused
        anyway (one change at a time) and the refusal would only fill the trace.
        A refusal for another reason (a transfer in progress, no entry of this
        term committed yet) is retried after the next Ready.
        """
        if core.role is not Role.LEADER:
            return
        m = self.current(core)
        if not m.learners or not m.committed:
            return
        if self._supply_own_term_entry(core):
            return  # after a failover: promotions wait for an entry of this term to commit
        for learner in core.caught_up_learners():
            try:
                core.promote_learner(learner)
            except (MembershipChangeError, NotLeader) as exc:
                log.debug("%s: promotion of %s deferred: %s", self._node_id, learner, exc)
                return
            log.info("%s: promoting learner %s to voter", self._node_id, learner)
            return  # one change per entry: the next waits for this one to commit

    def sync_peers(self, core: RaftCore, senders: PeerSenders) -> None:
        """sync_peers makes the dialed peer set follow the config in use.

        New members are dialed at once; a member the config in use no longer
        lists keeps its link until that config is committed (it must still hear
        of its removal, and a leader removing itself replicates until the entry
        commits, thesis 4.2.2); then the link is closed.
        """
        m = self.current(core)
        key = (m.index, m.committed)
        if key == self._seen:
            return
        self._seen = key
        wanted = {i: a for i, a in {**m.voters, **m.learners}.items() if i != self._node_id}
        for peer, address in wanted.items():
            self._leaving.pop(peer, None)
            if self._dialed.get(peer) != address:
                self._dialed[peer] = address
                senders.add_peer(peer, address)
        for peer in [p for p in self._dialed if p not in wanted]:
            self._leaving.setdefault(peer, m.index)
        if m.committed:
            for peer, index in list(self._leaving.items()):
                if index <= m.index:
                    del self._leaving[peer]
                    del self._dialed[peer]
                    senders.remove_peer(peer)
                    log.info("%s: disconnected removed member %s", self._node_id, peer)

    def accepts(self, core: RaftCore | None, sender: str, from_leader: bool) -> bool:
        """accepts says whether the transport passes a message from sender on to the core.

        Members of the config in use and peers not yet disconnected (the dialed
        set, which sync_peers keeps to the config in use: a set lookup, as this
        runs per message) are accepted; an unknown sender only with a leader's
        message (append or snapshot), which the core accepts from the leader of
        its term (a new learner has never heard of its leader; a joining node
        knows no config). The core checks again either way.
        """
        if sender == self._node_id or not sender:
            return False
        if sender in self._dialed:
            return True
        if core is not None and sender == core.leader_id:
            return True  # the leader we follow, even if it has left our config
        return from_leader
