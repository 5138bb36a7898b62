"""Helpers for driving the spec's cluster model in tests: deliver-all, run-until, elect, sync.

Every helper goes through `cluster_step`, so tests exercise exactly the state space the checkers
explore. After each action the helpers check the safety properties that must hold in *every*
reachable state (Election Safety, and that committed prefixes agree: State Machine Safety,
Raft paper section 5.4), so a scenario test that wanders into a bad state fails at that step.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace

from spec import (
    Action,
    AppendRequest,
    CheckQuorum,
    ClientRequest,
    ClusterState,
    Deliver,
    Durable,
    ElectionTimeout,
    Entry,
    HeartbeatDue,
    Input,
    Log,
    Message,
    NodeInput,
    NodeState,
    Receive,
    Role,
    SendAppend,
    StepResult,
    VoteResponse,
    cluster_step,
    initial_node,
    members_in_use,
    step,
)

__all__ = [
    "act",
    "append",
    "candidate",
    "check_safety",
    "committed_prefix",
    "deliver",
    "deliver_all",
    "deliverable",
    "drop_blocked",
    "elect",
    "entries",
    "expire_leases",
    "feed",
    "grant",
    "heartbeat",
    "in_flight",
    "leader",
    "leader_of",
    "node_with",
    "precandidate",
    "propose",
    "run",
    "run_until",
    "step_node",
    "sync",
    "timeout",
]

Picker = Callable[[tuple[Message, ...]], Message]


def entries(*terms: int) -> Log:
    """entries builds a log from a list of terms (payload = 1-based index, to tell them apart)."""
    return tuple(Entry(term, payload=bytes([i])) for i, term in enumerate(terms, start=1))


def node_with(
    node_id: int = 0,
    size: int = 3,
    *,
    term: int = 0,
    voted_for: int | None = None,
    log: Log = (),
    commit: int = 0,
) -> NodeState:
    """node_with boots a follower from a hand-written disk, the honest way to set up a node."""
    durable = Durable(term=term, voted_for=voted_for, log=log, commit=commit)
    return initial_node(node_id, tuple(range(size)), durable)


def append(
    src: int,
    dst: int,
    term: int,
    *,
    prev_index: int = 0,
    prev_term: int = 0,
    new: Log = (),
    leader_commit: int = 0,
    read_ctx: int = 0,
) -> AppendRequest:
    """append is a hand-made AppendEntries request (for single-node step tests)."""
    return AppendRequest(src, dst, term, prev_index, prev_term, new, leader_commit, read_ctx)


def check_safety(cluster: ClusterState) -> None:
    """check_safety asserts the per-state safety properties of section 5.4 (Figure 3).

    At most one leader per term; committed prefixes of any two nodes agree (State Machine
    Safety); and a leader holds every entry that a node of a term no newer than the leader's
    knows committed (Leader Completeness: that node learned of the commit in its term or an
    earlier one, so every leader of a term at least that one must have the entries).
    """
    leaders: dict[int, int] = {}
    for state in cluster.nodes:
        if state.role is Role.LEADER:
            assert leaders.setdefault(state.term, state.id) == state.id, (
                f"two leaders in term {state.term}"
            )
    prefix = committed_prefix(cluster)
    for state in cluster.nodes:
        mine = state.log[: state.commit]
        assert prefix[: len(mine)] == mine, f"node {state.id} committed a different entry"
    for lead in cluster.nodes:
        if lead.role is not Role.LEADER:
            continue
        for other in cluster.nodes:
            if other.term <= lead.term:
                known = other.log[: other.commit]
                assert lead.log[: len(known)] == known, (
                    f"leader {lead.id} of term {lead.term} lacks entries node {other.id} committed"
                )


def committed_prefix(cluster: ClusterState) -> Log:
    """committed_prefix is the longest log prefix that some node has marked committed."""
    best = max(cluster.nodes, key=lambda state: state.commit)
    return best.log[: best.commit]


def act(cluster: ClusterState, action: Action) -> ClusterState:
    """act applies one action that must be enabled, and checks safety on the result."""
    result = cluster_step(cluster, action)
    assert result.rejected is None, f"{action} rejected: {result.rejected}"
    check_safety(result.state)
    return result.state


def run(cluster: ClusterState, *actions: Action) -> ClusterState:
    """run applies several enabled actions in order."""
    for action in actions:
        cluster = act(cluster, action)
    return cluster


def step_node(cluster: ClusterState, action: NodeInput) -> tuple[ClusterState, StepResult]:
    """step_node applies a node input and also returns the node's StepResult."""
    result = cluster_step(cluster, action)
    assert result.rejected is None, f"{action} rejected: {result.rejected}"
    assert result.node_step is not None
    check_safety(result.state)
    return result.state, result.node_step


def deliverable(cluster: ClusterState) -> tuple[Message, ...]:
    """deliverable lists in-flight messages whose receiver is up and reachable."""
    return tuple(
        m
        for m in cluster.network
        if m.dst not in cluster.crashed and cluster.connected(m.src, m.dst)
    )


def _first(messages: tuple[Message, ...]) -> Message:
    return messages[0]


def run_until(
    cluster: ClusterState,
    done: Callable[[ClusterState], bool],
    *,
    pick: Picker = _first,
    max_steps: int = 2_000,
) -> ClusterState:
    """run_until delivers one deliverable message at a time until `done` holds.

    Fails if the network runs dry or `max_steps` pass first, so a test cannot silently hang
    or silently pass.
    """
    for _ in range(max_steps):
        if done(cluster):
            return cluster
        ready = deliverable(cluster)
        assert ready, "no deliverable message left and the goal is not reached"
        cluster = act(cluster, Deliver(pick(ready)))
    raise AssertionError(f"goal not reached in {max_steps} deliveries")


def deliver_all(
    cluster: ClusterState, *, pick: Picker = _first, max_steps: int = 5_000
) -> ClusterState:
    """deliver_all delivers until nothing deliverable is left (blocked messages stay in flight)."""
    return run_until(cluster, lambda c: not deliverable(c), pick=pick, max_steps=max_steps)


def drop_blocked(cluster: ClusterState) -> ClusterState:
    """drop_blocked empties the network of messages that cannot currently be delivered."""
    ready = deliverable(cluster)
    return replace(cluster, network=tuple(m for m in cluster.network if m in ready))


def timeout(cluster: ClusterState, node: int) -> ClusterState:
    """timeout fires `node`'s election timer (the randomized deadline is the test's choice)."""
    return act(cluster, NodeInput(node, ElectionTimeout()))


def expire_leases(cluster: ClusterState, *nodes: int) -> ClusterState:
    """expire_leases ticks CheckQuorum on live non-leaders, so they grant prevotes again."""
    for state in cluster.nodes:
        chosen = not nodes or state.id in nodes
        if chosen and state.id not in cluster.crashed and state.role is not Role.LEADER:
            cluster = act(cluster, NodeInput(state.id, CheckQuorum()))
    return cluster


def leader_of(cluster: ClusterState) -> int | None:
    """leader_of is the live leader with the highest term, or None."""
    live = [s for s in cluster.nodes if s.role is Role.LEADER and s.id not in cluster.crashed]
    return max(live, key=lambda s: s.term).id if live else None


def elect(cluster: ClusterState, node: int) -> ClusterState:
    """elect times `node` out and delivers everything; `node` must end up leader."""
    cluster = deliver_all(timeout(cluster, node))
    state = cluster.nodes[node]
    assert state.role is Role.LEADER, f"node {node} is {state.role} in term {state.term}"
    return cluster


def heartbeat(cluster: ClusterState, leader: int) -> ClusterState:
    """heartbeat makes `leader` send a heartbeat and delivers everything."""
    return deliver_all(act(cluster, NodeInput(leader, HeartbeatDue())))


def propose(cluster: ClusterState, leader: int, *payloads: bytes) -> ClusterState:
    """propose appends client commands to the leader's log (nothing is sent yet)."""
    for payload in payloads:
        cluster = act(cluster, NodeInput(leader, ClientRequest(payload)))
    return cluster


def _reachable_peers(cluster: ClusterState, leader: int) -> Iterable[int]:
    return (
        p
        for p in members_in_use(cluster.nodes[leader])
        if p != leader and p not in cluster.crashed and cluster.connected(leader, p)
    )


def sync(cluster: ClusterState, leader: int, *, rounds: int = 20) -> ClusterState:
    """sync replicates from `leader` to every reachable peer until logs and commits settle.

    Each round sends one AppendEntries per peer (from its next index) and delivers all replies;
    the commit index needs one more round to reach followers after the leader advances it.
    """
    for _ in range(rounds):
        before = cluster
        for peer in _reachable_peers(cluster, leader):
            cluster = act(cluster, NodeInput(leader, SendAppend(peer)))
        cluster = deliver_all(cluster)
        if cluster.nodes == before.nodes:
            return cluster
    raise AssertionError(f"replication from {leader} did not settle in {rounds} rounds")


def feed(state: NodeState, *inputs: Input) -> NodeState:
    """feed steps one node through inputs that must all be enabled."""
    for event in inputs:
        result = step(state, event)
        assert result.rejected is None, f"{event} rejected: {result.rejected}"
        state = result.state
    return state


def grant(src: int, dst: int, term: int, *, prevote: bool, granted: bool = True) -> Receive:
    """grant is a (pre)vote reply answering a request made in `term`, from a node at `term`."""
    return Receive(VoteResponse(src, dst, term, prevote, granted, request_term=term))


def precandidate(size: int = 3, term: int = 1, log: Log = (), commit: int = 0) -> NodeState:
    """precandidate is node 0 after its election timer fired (section 9.6)."""
    return feed(node_with(0, size, term=term, log=log, commit=commit), ElectionTimeout())


def candidate(size: int = 3, term: int = 1, log: Log = (), commit: int = 0) -> NodeState:
    """candidate is node 0 after a prevote quorum: it is in term `term + 1`."""
    state = precandidate(size, term, log, commit)
    grants = [grant(peer, 0, term, prevote=True) for peer in range(1, size // 2 + 1)]
    state = feed(state, *grants)
    assert state.role is Role.CANDIDATE
    return state


def leader(size: int = 3, term: int = 1, log: Log = (), commit: int = 0) -> NodeState:
    """leader is node 0 after winning the election in term `term + 1`."""
    state = candidate(size, term, log, commit)
    votes = [grant(peer, 0, term + 1, prevote=False) for peer in range(1, size // 2 + 1)]
    state = feed(state, *votes)
    assert state.role is Role.LEADER
    return state


def in_flight(
    cluster: ClusterState, src: int, dst: int, kind: type[Message] | None = None
) -> Message:
    """in_flight is the first in-flight message from src to dst (of `kind`, if given)."""
    for message in cluster.network:
        if message.src == src and message.dst == dst and (kind is None or type(message) is kind):
            return message
    raise AssertionError(f"no {kind} from {src} to {dst} in flight")


def deliver(cluster: ClusterState, *pairs: tuple[int, int]) -> ClusterState:
    """deliver delivers the first in-flight message for each (src, dst) pair, in order."""
    for src, dst in pairs:
        cluster = act(cluster, Deliver(in_flight(cluster, src, dst)))
    return cluster
