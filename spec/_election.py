"""Elections: prevote, real votes, and becoming leader (sections 5.2, 5.4.1; thesis 9.6).

Follows the seed: a timeout starts a prevote round that touches neither term nor vote; only a
prevote quorum, still in PRECANDIDATE at the same term, raises the term, votes for itself and
(through the persist output) makes that durable before any RequestVote leaves.
"""

from __future__ import annotations

from dataclasses import replace

from spec._commit import advance_commit
from spec._inuse import voters_in_use
from spec._log import Entry, EntryKind, is_up_to_date, last_index, last_term, spliced
from spec._messages import VoteRequest, VoteResponse
from spec._quorum import is_quorum
from spec._state import NodeState, Role
from spec._transition import DisabledError, Transition

__all__ = [
    "on_election_timeout",
    "on_timeout_now",
    "on_vote_request",
    "on_vote_response",
]


def _ask(state: NodeState, *, prevote: bool, transfer: bool = False) -> tuple[VoteRequest, ...]:
    """_ask asks every other voter of the configuration in use; learners are never asked."""
    return tuple(
        VoteRequest(
            src=state.id,
            dst=peer,
            term=state.term,
            prevote=prevote,
            last_log_index=last_index(state.log),
            last_log_term=last_term(state.log),
            transfer=transfer,
        )
        for peer in voters_in_use(state)
        if peer != state.id
    )


def on_election_timeout(state: NodeState) -> Transition:
    """on_election_timeout enters PRECANDIDATE and asks for prevotes (the seed, behaviour 2).

    The node forgets the leader it knew (etcd PR #8334) and, like the seed, restarts the prevote
    phase from CANDIDATE as well: a stalled election is retried, not extended. A learner, or a
    server outside the configuration it holds, never campaigns (thesis 4.1, 4.2.2). On a
    leader that is transferring leadership, the timeout ends the transfer (thesis 3.10).
    """
    if state.role is Role.LEADER:
        if state.transfer_target is not None:
            return Transition(replace(state, transfer_target=None))
        raise DisabledError("a leader's election timer is stopped")
    if state.id not in voters_in_use(state):
        raise DisabledError(f"node {state.id} is not a voter in its configuration")
    pre = replace(
        state,
        role=Role.PRECANDIDATE,
        leader=None,
        heard_from_leader=False,
        prevotes=frozenset({state.id}),
        votes=frozenset(),
        rejections=frozenset(),
    )
    if is_quorum(pre.prevotes, voters_in_use(pre)):
        return _start_election(pre)
    return Transition(pre, _ask(pre, prevote=True))


def _start_election(state: NodeState) -> Transition:
    """_start_election: term + 1, vote for self, become CANDIDATE, ask for votes (section 5.2)."""
    cand = replace(
        state,
        term=state.term + 1,
        voted_for=state.id,
        role=Role.CANDIDATE,
        prevotes=frozenset(),
        votes=frozenset({state.id}),
        rejections=frozenset(),
    )
    if is_quorum(cand.votes, voters_in_use(cand)):
        return become_leader(cand)
    return Transition(cand, _ask(cand, prevote=False))


def on_timeout_now(state: NodeState) -> Transition:
    """on_timeout_now: the leader's TimeoutNow arrived; campaign at once (thesis 3.10).

    The target skips prevote (the leader asked for this election, so it is no disruption) and
    marks its vote requests as a transfer. Only a voter of its configuration campaigns.
    """
    if state.id not in voters_in_use(state):
        return Transition(state)
    cand = replace(
        state,
        term=state.term + 1,
        voted_for=state.id,
        role=Role.CANDIDATE,
        leader=None,
        heard_from_leader=False,
        prevotes=frozenset(),
        votes=frozenset({state.id}),
        rejections=frozenset(),
    )
    if is_quorum(cand.votes, voters_in_use(cand)):
        return become_leader(cand)
    return Transition(cand, _ask(cand, prevote=False, transfer=True))


def become_leader(state: NodeState) -> Transition:
    """become_leader takes office, only as CANDIDATE (the seed, behaviour 4).

    When the commit index is behind the last index, the leader appends a term-change sentinel
    entry: committing it commits everything before it (section 5.4.2) and is what a read must
    wait for (thesis 6.4). Otherwise the commit index itself is the sentinel. The read ctx
    counter keeps counting across reigns (as the implementation's does); the acknowledgements
    start from zero, and replies only echo a ctx sent in the replier's own term.
    """
    if state.role is not Role.CANDIDATE:
        raise DisabledError("only a candidate can become leader")
    log = state.log
    if state.commit < last_index(log):
        log = spliced(log, len(log), (Entry(state.term, EntryKind.NOOP),))
        sentinel = last_index(log)
    else:
        sentinel = state.commit
    n = len(state.voters)
    match = [0] * n
    match[state.id] = last_index(log)
    leader = replace(
        state,
        role=Role.LEADER,
        leader=state.id,
        log=log,
        next_index=(last_index(log) + 1,) * n,
        match_index=tuple(match),
        heard_from_leader=False,
        recent_active=frozenset({state.id}),
        sentinel=sentinel,
        acked_ctx=(0,) * n,
        pending_reads=(),
        prevotes=frozenset(),
        rejections=frozenset(),
        transfer_target=None,
    )
    # A single-node cluster commits its sentinel at once.
    return Transition(advance_commit(leader))


def on_vote_request(state: NodeState, msg: VoteRequest) -> Transition:
    """on_vote_request answers a prevote or a vote; the caller has already adopted higher terms.

    Prevote (seed, behaviour 2): grant when the asked term is at least ours, the asker's log is
    at least as up to date, and we have not heard from a live leader recently (leader
    stickiness); nothing about us changes. Vote (section 5.2, 5.4.1): at most one per term,
    only to an up-to-date log; granting cancels our own election in flight. Requests are
    answered without consulting our configuration (thesis 4.1): a learner may already be a
    voter in the candidate's log; its grant counts only where it is a voter.
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


def _answer(state: NodeState, msg: VoteRequest, *, granted: bool) -> VoteResponse:
    return VoteResponse(
        src=state.id,
        dst=msg.src,
        term=state.term,
        prevote=msg.prevote,
        granted=granted,
        request_term=msg.term,
    )


def on_vote_response(state: NodeState, msg: VoteResponse) -> Transition:
    """on_vote_response counts a (pre)vote (the seed, behaviour 3).

    A reply counts only if it answers this election: the right phase and request_term equal
    to our term (etcd#8243). The first answer from each voter is the one that counts, so once
    the rejections rule out a quorum the round is over until the next timeout.
    """
    phase = Role.PRECANDIDATE if msg.prevote else Role.CANDIDATE
    if state.role is not phase or msg.request_term != state.term:
        return Transition(state)
    if msg.src in state.prevotes | state.votes | state.rejections:
        return Transition(state)
    if not msg.granted:
        return Transition(replace(state, rejections=state.rejections | {msg.src}))
    if msg.prevote:
        state = replace(state, prevotes=state.prevotes | {msg.src})
        if is_quorum(state.prevotes, voters_in_use(state)):
            return _start_election(state)
        return Transition(state)
    state = replace(state, votes=state.votes | {msg.src})
    if is_quorum(state.votes, voters_in_use(state)):
        return become_leader(state)
    return Transition(state)
