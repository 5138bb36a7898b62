"""The concrete cases the agreement check compares on: one node state and one input for it.

Most cases are drawn broadly (any role, any small log, an input near the node's term), which
covers every branch of every handler a little. Two rules only show a difference on states that
a broad draw almost never produces, because in a real run they take some twenty steps to reach:

- the leader's commit rule (section 5.4.2, Figure 8): it matters only for a leader whose log
  ends in entries of *earlier* terms beyond its commit index, with a quorum of match indexes on
  one of those entries, when an acknowledgement or a new proposal re-evaluates the rule;
- the election restriction (section 5.4.1): it matters only when "longer" and "newer last
  term" disagree, a longer log ending in an older term or a shorter one ending in a newer term.

Dedicated strategies draw exactly those situations (`_figure8_cases`, `_restriction_cases`),
so a spec that drops the term check or compares lengths only disagrees with the encoding within
a few hundred examples. They are coverage, not detectors: the comparison is the same.
"""

from __future__ import annotations

from hypothesis import strategies as st

from spec import (
    AppendRequest,
    AppendResponse,
    ClientRequest,
    ElectionTimeout,
    Entry,
    Input,
    NodeState,
    Receive,
    Restart,
    Role,
    SendAppend,
    VoteRequest,
    VoteResponse,
    term_at,
)

__all__ = ["CAPACITY", "KINDS", "agreement_cases"]

# Generated logs hold at most 5 entries and an input adds at most 3, so no successor needs more.
CAPACITY = 8

KINDS = (
    "vote request",
    "vote response",
    "append request",
    "append response",
    "timeout",
    "client request",
    "send append",
    "restart",
    "figure 8 commit",
    "election restriction",
)
"""KINDS: what `agreement_cases` chooses between, uniformly; the last two are the deep rules.

Uniform on purpose: weighting the deep rules up thins the broad kinds enough that a short run
(a hundred examples) can miss one altogether, since Hypothesis's generation clusters."""


# --- broad cases ---------------------------------------------------------------------------


@st.composite
def _node_states(draw: st.DrawFn) -> NodeState:
    n = draw(st.integers(1, 5))
    voters = tuple(range(n))
    node_id = draw(st.integers(0, n - 1))
    term = draw(st.integers(0, 4))
    length = draw(st.integers(0, 4)) if term > 0 else 0
    terms = sorted(draw(st.lists(st.integers(1, max(term, 1)), min_size=length, max_size=length)))
    role = draw(st.sampled_from(list(Role)))
    members = st.frozensets(st.sampled_from(voters))
    per_peer = role is Role.LEADER or draw(st.booleans())
    next_index = tuple(draw(st.integers(1, length + 1)) for _ in voters) if per_peer else ()
    match_index = tuple(draw(st.integers(0, length)) for _ in voters) if per_peer else ()
    return NodeState(
        id=node_id,
        voters=voters,
        term=term,
        voted_for=draw(st.none() | st.sampled_from(voters)),
        log=tuple(Entry(t, payload=b"p") for t in terms),
        commit=draw(st.integers(0, length)),
        role=role,
        leader=draw(st.none() | st.sampled_from(voters)),
        prevotes=draw(members),
        votes=draw(members),
        rejections=draw(members),
        next_index=next_index,
        match_index=match_index,
        heard_from_leader=draw(st.booleans()),
        acked_ctx=(0,) * n if per_peer else (),
    )


def _peer(draw: st.DrawFn, state: NodeState) -> int:
    peers = [p for p in state.voters if p != state.id]
    if not peers or draw(st.integers(0, 15)) == 0:
        return draw(st.sampled_from(state.voters))  # sometimes the node itself: disabled
    return draw(st.sampled_from(peers))


def _near(draw: st.DrawFn, value: int) -> int:
    return draw(st.integers(max(0, value - 1), value + 1))


@st.composite
def _vote_request(draw: st.DrawFn, state: NodeState) -> Input:
    term = _near(draw, state.term)
    return Receive(
        VoteRequest(
            src=_peer(draw, state),
            dst=state.id,
            term=term,
            prevote=draw(st.booleans()),
            last_log_index=draw(st.integers(0, 5)),
            last_log_term=draw(st.integers(0, term)),
        )
    )


@st.composite
def _vote_response(draw: st.DrawFn, state: NodeState) -> Input:
    request_term = _near(draw, state.term)
    return Receive(
        VoteResponse(
            src=_peer(draw, state),
            dst=state.id,
            term=draw(st.integers(request_term, request_term + 1)),
            prevote=draw(st.booleans()),
            granted=draw(st.booleans()),
            request_term=request_term,
        )
    )


@st.composite
def _append_request(draw: st.DrawFn, state: NodeState) -> Input:
    term = _near(draw, state.term)
    prev = draw(st.integers(0, len(state.log) + 1))
    own = term_at(state.log, prev)
    prev_term = own if own is not None and draw(st.booleans()) else draw(st.integers(0, term))
    count = draw(st.integers(0, 3))
    if draw(st.booleans()):  # copy our own entries, so the "already have them" path is hit
        entries = tuple(entry.term for entry in state.log[prev : prev + count])
    else:
        # New entries are no older than prev_term and no newer than the message. When our own
        # prev_term is newer than the message (a request from a lower term), no entry fits
        # both bounds: send none rather than an empty range (the InvalidArgument bug).
        low, high = max(prev_term, 1), max(term, 1)
        if low > high:
            count = 0
        entries = tuple(
            sorted(draw(st.lists(st.integers(low, max(low, high)), min_size=count, max_size=count)))
        )
    return Receive(
        AppendRequest(
            src=_peer(draw, state),
            dst=state.id,
            term=term,
            prev_index=prev,
            prev_term=prev_term,
            entries=tuple(Entry(t, payload=b"q") for t in entries),
            leader_commit=draw(st.integers(0, prev + len(entries) + 1)),
            read_ctx=0,
        )
    )


@st.composite
def _append_response(draw: st.DrawFn, state: NodeState) -> Input:
    return Receive(
        AppendResponse(
            src=_peer(draw, state),
            dst=state.id,
            term=_near(draw, state.term),
            success=draw(st.booleans()),
            match_index=draw(st.integers(0, len(state.log) + 1)),
            hint_index=draw(st.integers(0, len(state.log) + 2)),
            read_ctx=0,
        )
    )


@st.composite
def _send_append(draw: st.DrawFn, state: NodeState) -> Input:
    prev = draw(st.none() | st.integers(0, len(state.log) + 1))
    count = draw(st.none() | st.integers(0, 3))
    return SendAppend(peer=_peer(draw, state), prev_index=prev, count=count)


# --- the deep rules ------------------------------------------------------------------------


@st.composite
def _figure8_cases(draw: st.DrawFn) -> tuple[NodeState, Input]:
    """A leader about to re-evaluate its commit rule with a quorum on an older-term entry.

    Figure 8 (c)/(d): the leader of term T holds entries of earlier terms past its commit
    index, perhaps followed by entries of T (its sentinel, new proposals) or none. A quorum,
    counting the leader itself, stores some older-term entry `target` but not the first entry
    of T: either the quorum is already there and any acknowledgement or proposal re-runs the
    rule, or it is one short and the acknowledgement completes it. The correct rule leaves the
    commit index alone (or moves it only to an entry of T); counting replicas commits `target`.
    """
    n = draw(st.integers(2, 5))
    voters = tuple(range(n))
    node_id = draw(st.sampled_from(voters))
    term = draw(st.integers(2, 5))
    old = sorted(draw(st.lists(st.integers(1, term - 1), min_size=1, max_size=4)))
    current = draw(st.integers(0, min(2, 5 - len(old))))
    terms = (*old, *([term] * current))
    length = len(terms)
    commit = draw(st.integers(0, len(old) - 1))
    target = draw(st.integers(commit + 1, len(old)))
    peers = [p for p in voters if p != node_id]
    quorum = n // 2 + 1
    already = draw(st.booleans())  # the quorum holds before the input, or the input completes it
    high_count = quorum - 1 if already else quorum - 2
    order = draw(st.permutations(peers))
    high = set(order[:high_count])
    match = [
        length
        if p == node_id
        else draw(st.integers(target, len(old)))
        if p in high
        else draw(st.integers(0, target - 1))
        for p in voters
    ]
    next_index = tuple(draw(st.integers(m + 1, length + 1)) for m in match)
    state = NodeState(
        id=node_id,
        voters=voters,
        term=term,
        voted_for=node_id,
        log=tuple(Entry(t, payload=b"p") for t in terms),
        commit=commit,
        role=Role.LEADER,
        leader=node_id,
        next_index=next_index,
        match_index=tuple(match),
        heard_from_leader=draw(st.booleans()),
        recent_active=frozenset({node_id}),
        acked_ctx=(0,) * n,
    )
    event: Input
    if already and draw(st.booleans()):
        event = ClientRequest(b"c")
    else:
        # A successful acknowledgement in the current term from a peer outside the quorum
        # (when it completes it) or from any peer (when the quorum already holds).
        src = order[high_count] if not already and high_count < len(order) else None
        if src is None:
            src = draw(st.sampled_from(peers))
        event = Receive(
            AppendResponse(
                src=src,
                dst=node_id,
                term=term,
                success=True,
                match_index=draw(st.integers(target, len(old))),
                hint_index=0,
                read_ctx=0,
            )
        )
    return state, event


@st.composite
def _restriction_cases(draw: st.DrawFn) -> tuple[NodeState, Input]:
    """A (pre)vote request whose log is longer but older, or shorter but newer, than ours.

    Section 5.4.1 compares last terms first and lengths only on a tie: a candidate with more
    entries of older terms must be refused, one with fewer entries but a newer last term must be
    granted (when nothing else refuses it). Ties in length with an older last term are drawn
    too. Vote state, leader contact and role are biased towards the ones where the restriction
    is what decides the answer.
    """
    n = draw(st.integers(2, 5))
    voters = tuple(range(n))
    node_id = draw(st.sampled_from(voters))
    src = draw(st.sampled_from([p for p in voters if p != node_id]))
    mine = sorted(draw(st.lists(st.integers(1, 4), min_size=2, max_size=4)))
    last = mine[-1]
    shape = draw(st.sampled_from(["longer but older", "shorter but newer", "as long, older"]))
    if shape == "shorter but newer" or last == 1:
        cand_term = draw(st.integers(last + 1, last + 2))
        cand_index = draw(st.integers(1, max(1, len(mine) - 1)))
    else:
        cand_term = draw(st.integers(1, last - 1))
        low = len(mine) if shape == "as long, older" else len(mine) + 1
        cand_index = draw(st.integers(low, low + 2))
    term = draw(st.integers(last, max(last, cand_term) + 1))
    role = draw(st.sampled_from([Role.FOLLOWER, Role.FOLLOWER, Role.PRECANDIDATE, Role.CANDIDATE]))
    voted_for = draw(st.sampled_from([None, None, src, node_id]))
    if role is Role.CANDIDATE:
        voted_for = node_id
    state = NodeState(
        id=node_id,
        voters=voters,
        term=term,
        voted_for=voted_for,
        log=tuple(Entry(t, payload=b"p") for t in mine),
        commit=draw(st.integers(0, len(mine))),
        role=role,
        leader=None,
        prevotes=frozenset({node_id}) if role is Role.PRECANDIDATE else frozenset(),
        votes=frozenset({node_id}) if role is Role.CANDIDATE else frozenset(),
        heard_from_leader=draw(st.integers(0, 3)) == 0,
    )
    request_term = draw(st.integers(max(term, cand_term), max(term, cand_term) + 1))
    event = Receive(
        VoteRequest(
            src=src,
            dst=node_id,
            term=request_term,
            prevote=draw(st.booleans()),
            last_log_index=cand_index,
            last_log_term=cand_term,
        )
    )
    return state, event


# --- all cases -----------------------------------------------------------------------------


@st.composite
def agreement_cases(draw: st.DrawFn) -> tuple[NodeState, Input]:
    """agreement_cases draws a concrete node state and an input for it."""
    kind = draw(st.sampled_from(KINDS))
    match kind:
        case "figure 8 commit":
            return draw(_figure8_cases())
        case "election restriction":
            return draw(_restriction_cases())
        case _:
            pass
    state = draw(_node_states())
    event: Input
    match kind:
        case "vote request":
            event = draw(_vote_request(state))
        case "vote response":
            event = draw(_vote_response(state))
        case "append request":
            event = draw(_append_request(state))
        case "append response":
            event = draw(_append_response(state))
        case "timeout":
            event = ElectionTimeout()
        case "client request":
            event = ClientRequest(b"c")
        case "send append":
            event = draw(_send_append(state))
        case _:
            event = Restart(state.durable())
    return state, event
