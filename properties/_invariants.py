"""The claims raftwright makes, as plain functions over cluster states and transitions.

Every engine (Hypothesis, the explorer, trace conformance) checks this one list, so a claim is
stated once. A state invariant looks at one `ClusterState`; a transition invariant looks at a
step (before, action, after), for claims about change such as "terms never decrease". Each
returns None when the claim holds, or a one-line explanation of what broke.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import combinations

from spec import (
    Action,
    AppendRequest,
    AppendResponse,
    ClusterState,
    Config,
    Deliver,
    EntryKind,
    Log,
    NodeState,
    Role,
    VoteRequest,
    VoteResponse,
    config_in_use,
    is_quorum,
    latest_config,
    quorum_size,
    voters_in_use,
)

__all__ = [
    "STATE_INVARIANTS",
    "TRANSITION_INVARIANTS",
    "StateInvariant",
    "TransitionInvariant",
    "Violation",
    "check_state",
    "check_transition",
]


@dataclass(frozen=True, slots=True)
class Violation:
    """Violation names the invariant that failed and says how."""

    invariant: str
    detail: str

    def __str__(self) -> str:
        return f"{self.invariant}: {self.detail}"


@dataclass(frozen=True, slots=True)
class StateInvariant:
    """StateInvariant is a named claim about every reachable cluster state."""

    name: str
    check: Callable[[ClusterState], str | None]


@dataclass(frozen=True, slots=True)
class TransitionInvariant:
    """TransitionInvariant is a named claim about every step between reachable states."""

    name: str
    check: Callable[[ClusterState, Action, ClusterState], str | None]


# --- state invariants ------------------------------------------------------------------------


def election_safety(cluster: ClusterState) -> str | None:
    """At most one leader per term (Raft paper, Figure 3 and section 5.2)."""
    leaders: dict[int, int] = {}
    for node in cluster.nodes:
        if node.role is Role.LEADER:
            other = leaders.setdefault(node.term, node.id)
            if other != node.id:
                return f"nodes {other} and {node.id} are both leader in term {node.term}"
    return None


def _vote_evidence(cluster: ClusterState) -> Iterator[tuple[int, int, int]]:
    """Every trace of a vote, as (voter, term, candidate)."""
    for node, disk in zip(cluster.nodes, cluster.disks, strict=True):
        if node.voted_for is not None:
            yield node.id, node.term, node.voted_for
        if disk.voted_for is not None:
            yield node.id, disk.term, disk.voted_for
        if node.role in (Role.CANDIDATE, Role.LEADER):
            for voter in node.votes:
                yield voter, node.term, node.id
    for message in cluster.network:
        if isinstance(message, VoteResponse) and message.granted and not message.prevote:
            yield message.src, message.request_term, message.dst


def one_vote_per_term(cluster: ClusterState) -> str | None:
    """A server votes for at most one candidate in a term (Figure 2, RequestVote rule 2).

    Ivy's key lemma for Election Safety. Evidence of a vote is anywhere it can be seen: the
    voter's memory and disk, a candidate's tally, and grants still in flight.
    """
    seen: dict[tuple[int, int], int] = {}
    for voter, term, candidate in _vote_evidence(cluster):
        first = seen.setdefault((voter, term), candidate)
        if first != candidate:
            return f"node {voter} voted for both {first} and {candidate} in term {term}"
    return None


def _config_upto(node: NodeState, index: int) -> Config:
    """The configuration a node used when its log ended at `index` (thesis 4.1)."""
    _, found = latest_config(node.log, index)
    if found is not None:
        return found
    if node.initial_config is not None:
        return node.initial_config
    return Config(tuple(sorted(node.voters)))


def leader_holds_quorum_of_votes(cluster: ClusterState) -> str | None:
    """Every leader was elected by a quorum, each member of which voted for it (Ivy lemma).

    The quorum is of the configuration the candidate used: the latest one in its log up to
    the sentinel (its log when it won, plus the sentinel no-op); configuration entries it
    appended later as leader do not re-judge its election (thesis 4.1).
    """
    for node in cluster.nodes:
        if node.role is not Role.LEADER:
            continue
        voters = _config_upto(node, node.sentinel).voters
        if not is_quorum(node.votes, voters):
            return f"leader {node.id} of term {node.term} holds only votes {sorted(node.votes)}"
    return None


def log_matching(cluster: ClusterState) -> str | None:
    """Two logs with an entry of the same index and term agree up to it (section 5.3)."""
    for a, b in combinations(cluster.nodes, 2):
        shared = min(len(a.log), len(b.log))
        for index in range(shared, 0, -1):
            if a.log[index - 1].term == b.log[index - 1].term:
                if a.log[:index] != b.log[:index]:
                    return (
                        f"nodes {a.id} and {b.id} agree on the term at index {index} "
                        "but differ before it"
                    )
                break
    return None


def commit_within_log(cluster: ClusterState) -> str | None:
    """A node's commit index never points past its own log (well-formedness)."""
    for node in cluster.nodes:
        if node.commit > len(node.log):
            return f"node {node.id} commit {node.commit} is past its last index {len(node.log)}"
    return None


def leader_completeness(cluster: ClusterState) -> str | None:
    """A committed entry is in the log of every leader of a later term (section 5.4.3).

    "Later" is measured from the term in which the entry was committed, not the entry's own
    term: a stale leader of an intermediate term may lack an old entry that a newer leader
    committed afterwards. Without history we bound the commit term by the term of a node that
    knows of the commit (it learned it in its current term or before), so the check compares
    each node's committed prefix with leaders of that node's term or later; it never flags a
    legal run and still catches a leader elected without a committed entry.
    """
    leaders = [node for node in cluster.nodes if node.role is Role.LEADER]
    for node in cluster.nodes:
        for index, entry in enumerate(node.log[: node.commit], start=1):
            for leader in leaders:
                if leader.term >= node.term and (
                    len(leader.log) < index or leader.log[index - 1] != entry
                ):
                    return (
                        f"entry {index} (term {entry.term}) committed on node {node.id} "
                        f"is missing from leader {leader.id} of term {leader.term}"
                    )
    return None


def state_machine_safety(cluster: ClusterState) -> str | None:
    """No two nodes apply different entries at one index (section 5.4.3)."""
    for a, b in combinations(cluster.nodes, 2):
        # A commit past the log is commit_within_log's to report; compare what both hold.
        shared = min(a.commit, b.commit, len(a.log), len(b.log))
        for index in range(1, shared + 1):
            if a.log[index - 1] != b.log[index - 1]:
                return f"nodes {a.id} and {b.id} committed different entries at index {index}"
    return None


def persist_before_send(cluster: ClusterState) -> str | None:
    """No vote, vote request or append acknowledgement is in flight ahead of its durable state.

    A granted vote or a candidate's request in term t needs (term t, vote) on the sender's disk
    (PySyncObj #84/#201 lost exactly this); a successful append reply for index m in term t
    needs at least m entries on the follower's disk.
    """
    for message in cluster.network:
        disk = cluster.disks[message.src]
        if isinstance(message, VoteRequest) and not message.prevote:
            needed = (message.term, message.src)
        elif isinstance(message, VoteResponse) and message.granted and not message.prevote:
            needed = (message.request_term, message.dst)
        elif isinstance(message, AppendResponse) and message.success:
            if disk.term < message.term or (
                disk.term == message.term and len(disk.log) < message.match_index
            ):
                return (
                    f"node {message.src} acknowledged index {message.match_index} in term "
                    f"{message.term} before it was durable"
                )
            continue
        else:
            continue
        term, candidate = needed
        if disk.term < term or (disk.term == term and disk.voted_for != candidate):
            return (
                f"node {message.src} sent a vote message for term {term} while its disk "
                f"holds term {disk.term}, vote {disk.voted_for}"
            )
    return None


def read_safety(cluster: ClusterState) -> str | None:
    """A read answered at index i covers every entry committed before it arrived (thesis 6.4)."""
    for record in cluster.reads:
        if record.answered is not None and record.answered < record.must_cover:
            return (
                f"read {record.read_id} on node {record.node} answered at index "
                f"{record.answered}, but index {record.must_cover} was committed before it arrived"
            )
    return None


def one_uncommitted_config(cluster: ClusterState) -> str | None:
    """A leader's log holds at most one configuration entry past its commit index (thesis 4.1).

    One change at a time is what keeps every old majority overlapping every new one.
    """
    for node in cluster.nodes:
        if node.role is not Role.LEADER:
            continue
        pending = [
            index
            for index, entry in enumerate(node.log[node.commit :], start=node.commit + 1)
            if entry.kind is EntryKind.CONFIG
        ]
        if len(pending) > 1:
            return f"leader {node.id} of term {node.term} has uncommitted config entries {pending}"
    return None


def config_near_committed(cluster: ClusterState) -> str | None:
    """A configuration in use differs from the committed one by at most one voter (thesis 4.1).

    "Committed" is the longest committed prefix any node knows of; the claim is about nodes
    whose log holds that prefix (a node still missing committed entries is merely behind and
    uses an older configuration until it catches up).
    """
    top = max(cluster.nodes, key=lambda node: node.commit)
    prefix = top.log[: top.commit]
    committed = _config_upto(top, top.commit).voters
    for node in cluster.nodes:
        if node.log[: len(prefix)] != prefix:
            continue
        in_use = config_in_use(node).voters
        changed = set(in_use) ^ set(committed)
        if len(changed) > 1:
            return (
                f"node {node.id} uses voters {list(in_use)} but the committed configuration "
                f"has {list(committed)}"
            )
    return None


# --- transition invariants -------------------------------------------------------------------


def terms_never_decrease(before: ClusterState, action: Action, after: ClusterState) -> str | None:
    """A node's current term only grows, across restarts too (section 5.1)."""
    for old, new in zip(before.nodes, after.nodes, strict=True):
        if new.term < old.term:
            return f"node {old.id} went from term {old.term} back to {new.term}"
    return None


def commit_never_regresses(before: ClusterState, action: Action, after: ClusterState) -> str | None:
    """A node's commit index only grows (PySyncObj #166/#167 saw it go backwards)."""
    for old, new in zip(before.nodes, after.nodes, strict=True):
        if new.commit < old.commit:
            return f"node {old.id} commit went from {old.commit} back to {new.commit}"
    return None


def leader_append_only(before: ClusterState, action: Action, after: ClusterState) -> str | None:
    """A leader never overwrites or deletes entries in its log (Figure 3)."""
    for old, new in zip(before.nodes, after.nodes, strict=True):
        same_reign = old.role is Role.LEADER and new.role is Role.LEADER and old.term == new.term
        if same_reign and new.log[: len(old.log)] != old.log:
            return f"leader {old.id} of term {old.term} rewrote its log"
    return None


def _prevote_grants(old: NodeState, action: Action) -> frozenset[int]:
    grants = old.prevotes | {old.id} if old.role is Role.PRECANDIDATE else frozenset({old.id})
    if isinstance(action, Deliver):
        message = action.message
        if (
            isinstance(message, VoteResponse)
            and message.prevote
            and message.granted
            and message.dst == old.id
            and message.request_term == old.term
        ):
            grants |= {message.src}
    return grants


def _timeout_now_term(action: Action, node: NodeState) -> int | None:
    """The term of a leader's TimeoutNow that the action hands `node`, if it does (thesis 3.10).

    The leader's term may be newer than the node's (it missed that election, e.g. it was
    down): accepting the append adopts the term, and the transfer election follows at once.
    """
    if not isinstance(action, Deliver):
        return None
    message = action.message
    if (
        isinstance(message, AppendRequest)
        and message.timeout_now
        and message.dst == node.id
        and message.term >= node.term
    ):
        return message.term
    return None


def no_term_inflation(before: ClusterState, action: Action, after: ClusterState) -> str | None:
    """A node raises its own term only after a prevote quorum (thesis section 9.6).

    So a node cut off from a quorum never inflates its term and disrupts the cluster when it
    rejoins. Adopting a higher term from a message is not inflation, and neither is the one
    election a leader asks for with TimeoutNow (thesis 3.10: the leader consents to it).
    """
    for old, new in zip(before.nodes, after.nodes, strict=True):
        if new.term <= old.term:
            continue
        if isinstance(action, Deliver) and action.message.term == new.term:
            message = action.message
            if not (isinstance(message, VoteRequest) and message.prevote):
                continue
        leader_term = _timeout_now_term(action, old)
        if leader_term is not None and new.term == leader_term + 1:
            continue
        if not is_quorum(_prevote_grants(old, action), voters_in_use(old)):
            return f"node {old.id} raised its term to {new.term} without a prevote quorum"
    return None


def commit_by_voter_quorum(before: ClusterState, action: Action, after: ClusterState) -> str | None:
    """A leader advances its commit only when a majority of its voters store the entry.

    The voters are those of the configuration the leader uses after the step (thesis 4.1: a
    configuration entry is in use, and counts its own quorum, from the moment it is in the
    log; removing a voter from two leaves the leader as the whole quorum); learners never
    count (thesis 4.2.1), nor does a leader that has removed itself (thesis 4.2.2). What a
    voter stores is read from its disk, not from the leader's bookkeeping, so a wrong quorum
    rule cannot vouch for itself.
    """
    for old, new in zip(before.nodes, after.nodes, strict=True):
        if old.role is not Role.LEADER or new.term != old.term or new.commit <= old.commit:
            continue
        index = new.commit
        if index > len(new.log):
            continue  # commit_within_log reports a commit past the log
        entry = new.log[index - 1]
        voters = config_in_use(new).voters  # a change counts under the config it creates
        holders = [
            voter
            for voter in voters
            if len(after.disks[voter].log) >= index and after.disks[voter].log[index - 1] == entry
        ]
        if len(holders) < quorum_size(len(voters)):
            return (
                f"leader {old.id} of term {old.term} committed index {index} stored only by "
                f"voters {holders} of {list(voters)}"
            )
    return None


def _at_least_as_up_to_date(last_term: int, last_index: int, log: Log) -> bool:
    mine = log[-1].term if log else 0
    if last_term != mine:
        return last_term > mine
    return last_index >= len(log)


def votes_respect_restriction(
    before: ClusterState, action: Action, after: ClusterState
) -> str | None:
    """A (pre)vote is granted only to a log at least as up to date as the voter's (5.4.1).

    Checked on the step that grants: the request delivered and the grant it sends back. The
    comparison is written out here, not borrowed from the spec, and no flag on the request
    (a leadership transfer's included, thesis 3.10 / 4.2.3) exempts it.
    """
    if not isinstance(action, Deliver) or not isinstance(action.message, VoteRequest):
        return None
    request = action.message
    voter = before.nodes[request.dst]
    for message in after.network:
        if (
            isinstance(message, VoteResponse)
            and message.granted
            and message.src == request.dst
            and message.dst == request.src
            and message.request_term == request.term
            and message.prevote == request.prevote
            and message not in before.network
            and not _at_least_as_up_to_date(
                request.last_log_term, request.last_log_index, voter.log
            )
        ):
            return (
                f"node {voter.id} granted node {request.src} a vote for term {request.term} "
                f"though its log ({request.last_log_index}, {request.last_log_term}) is behind"
            )
    return None


STATE_INVARIANTS: tuple[StateInvariant, ...] = (
    StateInvariant("election_safety", election_safety),
    StateInvariant("one_vote_per_term", one_vote_per_term),
    StateInvariant("leader_holds_quorum_of_votes", leader_holds_quorum_of_votes),
    StateInvariant("log_matching", log_matching),
    StateInvariant("commit_within_log", commit_within_log),
    StateInvariant("leader_completeness", leader_completeness),
    StateInvariant("state_machine_safety", state_machine_safety),
    StateInvariant("persist_before_send", persist_before_send),
    StateInvariant("read_safety", read_safety),
    StateInvariant("one_uncommitted_config", one_uncommitted_config),
    StateInvariant("config_near_committed", config_near_committed),
)

TRANSITION_INVARIANTS: tuple[TransitionInvariant, ...] = (
    TransitionInvariant("terms_never_decrease", terms_never_decrease),
    TransitionInvariant("commit_never_regresses", commit_never_regresses),
    TransitionInvariant("leader_append_only", leader_append_only),
    TransitionInvariant("no_term_inflation", no_term_inflation),
    TransitionInvariant("commit_by_voter_quorum", commit_by_voter_quorum),
    TransitionInvariant("votes_respect_restriction", votes_respect_restriction),
)


def check_state(cluster: ClusterState) -> list[Violation]:
    """check_state runs every state invariant and returns the violations (empty when safe)."""
    found = []
    for invariant in STATE_INVARIANTS:
        detail = invariant.check(cluster)
        if detail is not None:
            found.append(Violation(invariant.name, detail))
    return found


def check_transition(before: ClusterState, action: Action, after: ClusterState) -> list[Violation]:
    """check_transition runs every transition invariant over one step."""
    found = []
    for invariant in TRANSITION_INVARIANTS:
        detail = invariant.check(before, action, after)
        if detail is not None:
            found.append(Violation(invariant.name, detail))
    return found
