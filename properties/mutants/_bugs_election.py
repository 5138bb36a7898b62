"""Seeded election bugs: each function is a small, realistic wrong version of a spec function.

Every mutant below is a copy of the spec function it replaces with one mistake in it, the kind
that real Raft implementations have shipped. The docstring names the mistake and where it was
seen. They are never called unless a mutant is applied (see `_patch.patched`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from spec import Durable, Log, NodeState, Role, VoteRequest, VoteResponse, is_up_to_date
from spec._election import _answer, _ask, _start_election, become_leader
from spec._quorum import is_quorum
from spec._transition import DisabledError, Transition

__all__ = [
    "initial_node_forgets_vote",
    "is_quorum_seed_threshold",
    "is_up_to_date_always",
    "is_up_to_date_by_length",
    "on_election_timeout_bumps_term",
    "on_vote_request_ignores_voted_for",
    "on_vote_request_prevote_records_vote",
    "on_vote_response_any_term",
    "start_election_vote_not_recorded",
]


def on_vote_request_ignores_voted_for(state: NodeState, msg: VoteRequest) -> Transition:
    """Double vote: a real vote is granted on the log check alone, ignoring `voted_for`.

    Mirrors servers that treat "already voted" as "voted for nobody yet" whenever the request
    is up to date, so two candidates of one term both get the vote (Figure 2, RequestVote
    rule 2; Ivy's lemma "a node votes at most once per term").
    """
    up_to_date = is_up_to_date(msg.last_log_term, msg.last_log_index, state.log)
    if msg.prevote:
        granted = (
            msg.term >= state.term
            and up_to_date
            and not state.heard_from_leader
            and state.role is not Role.LEADER
        )
        return Transition(state, (_answer(state, msg, granted=granted),))
    if msg.term < state.term:
        return Transition(state, (_answer(state, msg, granted=False),))
    granted = up_to_date  # BUG: voted_for is never consulted
    if granted:
        state = replace(
            state,
            voted_for=msg.src,
            role=Role.FOLLOWER,
            prevotes=frozenset(),
            rejections=frozenset(),
        )
    return Transition(state, (_answer(state, msg, granted=granted),))


def on_vote_request_prevote_records_vote(state: NodeState, msg: VoteRequest) -> Transition:
    """Prevote with side effects: granting a prevote records it as the node's vote.

    Prevote must change nothing on the granting side (thesis section 9.6; the seed). Sharing
    the vote path between PreVote and Vote, as early prevote patches did, makes a prevote
    grant overwrite `voted_for` in the current term, so the node has two votes in one term.
    """
    up_to_date = is_up_to_date(msg.last_log_term, msg.last_log_index, state.log)
    if msg.prevote:
        granted = (
            msg.term >= state.term
            and up_to_date
            and not state.heard_from_leader
            and state.role is not Role.LEADER
        )
        if granted:
            state = replace(state, voted_for=msg.src)  # BUG: a prevote is not a vote
        return Transition(state, (_answer(state, msg, granted=granted),))
    if msg.term < state.term:
        return Transition(state, (_answer(state, msg, granted=False),))
    granted = state.voted_for in (None, msg.src) and up_to_date
    if granted:
        state = replace(
            state,
            voted_for=msg.src,
            role=Role.FOLLOWER,
            prevotes=frozenset(),
            rejections=frozenset(),
        )
    return Transition(state, (_answer(state, msg, granted=granted),))


def on_election_timeout_bumps_term(state: NodeState) -> Transition:
    """Prevote that raises the term: the pre-candidate increments its term before asking.

    This is plain Raft's timeout dressed up as prevote (thesis section 9.6 exists to stop it):
    a node cut off from the cluster inflates its term on every timeout and deposes a healthy
    leader when it comes back.
    """
    if state.role is Role.LEADER:
        raise DisabledError("a leader's election timer is stopped")
    pre = replace(
        state,
        term=state.term + 1,  # BUG: prevote must not touch the term
        voted_for=None,
        role=Role.PRECANDIDATE,
        leader=None,
        heard_from_leader=False,
        prevotes=frozenset({state.id}),
        votes=frozenset(),
        rejections=frozenset(),
    )
    if is_quorum(pre.prevotes, pre.voters):
        return _start_election(pre)
    return Transition(pre, _ask(pre, prevote=True))


def is_up_to_date_always(cand_last_term: int, cand_last_index: int, log: Log) -> bool:
    """Election restriction skipped: every candidate's log counts as up to date.

    Section 5.4.1's restriction is what makes Leader Completeness hold; implementations that
    "add it later" elect a leader missing committed entries, which then overwrites them.
    """
    return True


def is_up_to_date_by_length(cand_last_term: int, cand_last_index: int, log: Log) -> bool:
    """Up-to-date by length only: the longer log wins, whatever its last term.

    A frequent misreading of section 5.4.1 ("if the logs end with the same term, the longer log
    is more up to date" applied without the term comparison before it): a long log of stale
    uncommitted entries beats a shorter one holding a committed entry of a newer term.
    """
    return cand_last_index >= len(log)


def is_quorum_seed_threshold(members: Iterable[int], voters: tuple[int, ...]) -> bool:
    """Quorum off by one for even sizes: the seed's threshold over the *other* peers.

    The seed counted `len(others) >> 1` grants from others plus itself: right for odd sizes,
    but 2 of 4 (or 1 of 2) nodes form a "majority", so two leaders can share a term (the
    design brief's seed weakness; section 5.2 needs a majority of the full cluster).
    """
    others = len(voters) - 1
    return len(set(members) & set(voters)) >= (others >> 1) + 1


def on_vote_response_any_term(state: NodeState, msg: VoteResponse) -> Transition:
    """Vote replies counted without checking the request's term (etcd#8243).

    A grant that answered an earlier election of this node is counted in the current one, so
    the node can become leader of a term in which that voter never voted for it.
    """
    phase = Role.PRECANDIDATE if msg.prevote else Role.CANDIDATE
    if state.role is not phase:  # BUG: msg.request_term is not compared with state.term
        return Transition(state)
    if msg.src in state.prevotes | state.votes | state.rejections:
        return Transition(state)
    if not msg.granted:
        return Transition(replace(state, rejections=state.rejections | {msg.src}))
    if msg.prevote:
        state = replace(state, prevotes=state.prevotes | {msg.src})
        if is_quorum(state.prevotes, state.voters):
            return _start_election(state)
        return Transition(state)
    state = replace(state, votes=state.votes | {msg.src})
    if is_quorum(state.votes, state.voters):
        return become_leader(state)
    return Transition(state)


def start_election_vote_not_recorded(state: NodeState) -> Transition:
    """Candidate counts its own vote but never records it in `voted_for`.

    The self-vote lives only in the tally, so the node still looks free to vote in its own
    term and grants a rival candidate as well (Figure 2, "Rules for Servers: vote for self").
    """
    cand = replace(
        state,
        term=state.term + 1,
        voted_for=None,  # BUG: the self-vote is neither recorded nor persisted
        role=Role.CANDIDATE,
        prevotes=frozenset(),
        votes=frozenset({state.id}),
        rejections=frozenset(),
    )
    if is_quorum(cand.votes, cand.voters):
        return become_leader(cand)
    return Transition(cand, _ask(cand, prevote=False))


def initial_node_forgets_vote(
    node_id: int, voters: tuple[int, ...], durable: Durable | None = None
) -> NodeState:
    """Vote not recovered on restart: the term comes back from disk, `voted_for` does not.

    PySyncObj #84 / #201: term and vote were not persisted and reloaded, so a node that
    crashed after voting votes again in the same term after a cold restart.
    """
    state = NodeState(id=node_id, voters=voters)
    if durable is None:
        return state
    return replace(state, term=durable.term, log=durable.log, commit=durable.commit)
