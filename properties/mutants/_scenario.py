"""Hand-written cluster runs that expose a bug to the invariants directly.

A scenario is a short, readable script over the spec's cluster model ("elect node 0, propose,
replicate to node 1, ..."). Every step goes through `spec.cluster_step` and is checked with
`properties.check_state` / `check_transition`, the same invariants the engines use. On the
correct spec a scenario runs to its end with no violation (a test says so); under its mutant
it must hit one. These are the fast, deterministic witnesses; the engines are the real test.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from properties import Violation, check_state, check_transition, format_run
from spec import (
    Action,
    AddLearner,
    AppendRequest,
    AppendResponse,
    CheckQuorum,
    ClientRequest,
    ClusterState,
    Crash,
    Deliver,
    Duplicate,
    ElectionTimeout,
    Heal,
    HeartbeatDue,
    Message,
    NodeInput,
    Partition,
    PromoteLearner,
    ReadRequest,
    Recover,
    RemoveServer,
    Role,
    SendAppend,
    TransferLeadership,
    VoteRequest,
    VoteResponse,
    cluster_step,
    initial_cluster,
)

__all__ = ["Run", "ScenarioError", "ScenarioOutcome", "Violated", "run_scenario"]

_KINDS: dict[str, type[Message]] = {
    "prevote": VoteRequest,
    "vote": VoteRequest,
    "prevote-reply": VoteResponse,
    "vote-reply": VoteResponse,
    "append": AppendRequest,
    "append-reply": AppendResponse,
}


class ScenarioError(Exception):
    """ScenarioError: the script asked for a step the cluster cannot take (it diverged)."""


class Violated(Exception):  # noqa: N818 - a control-flow signal, not an error
    """Violated stops a script at the first broken invariant."""

    def __init__(self, violations: list[Violation]) -> None:
        super().__init__("; ".join(str(v) for v in violations))
        self.violations = violations


def _matches(message: Message, kind: str, src: int | None, dst: int | None) -> bool:
    if kind not in _KINDS:
        raise ScenarioError(f"unknown message kind {kind!r}")
    if not isinstance(message, _KINDS[kind]):
        return False
    is_vote = isinstance(message, VoteRequest | VoteResponse)
    if is_vote and message.prevote != kind.startswith("prevote"):  # type: ignore[union-attr]
        return False
    return (src is None or message.src == src) and (dst is None or message.dst == dst)


@dataclass
class Run:
    """Run drives a cluster step by step and checks every invariant after every step."""

    state: ClusterState
    steps: list[tuple[Action, ClusterState]] = field(default_factory=list)

    def do(self, action: Action) -> None:
        """do applies one action; a refused action means the script diverged."""
        result = cluster_step(self.state, action)
        if result.rejected is not None:
            raise ScenarioError(f"step {len(self.steps) + 1} refused: {result.rejected}")
        before, self.state = self.state, result.state
        self.steps.append((action, self.state))
        found = check_transition(before, action, self.state) + check_state(self.state)
        if found:
            raise Violated(found)

    # --- local inputs ---------------------------------------------------------------------

    def timeout(self, node: int) -> None:
        self.do(NodeInput(node, ElectionTimeout()))

    def propose(self, node: int, payload: bytes) -> None:
        self.do(NodeInput(node, ClientRequest(payload)))

    def read(self, node: int, read_id: int) -> None:
        self.do(NodeInput(node, ReadRequest(read_id)))

    def heartbeat(self, node: int) -> None:
        self.do(NodeInput(node, HeartbeatDue()))

    def check_quorum(self, node: int) -> None:
        self.do(NodeInput(node, CheckQuorum()))

    def send(
        self, leader: int, peer: int, prev: int | None = None, count: int | None = None
    ) -> None:
        self.do(NodeInput(leader, SendAppend(peer, prev, count)))

    def crash(self, node: int) -> None:
        self.do(Crash(node))

    def add_learner(self, leader: int, node: int) -> None:
        self.do(NodeInput(leader, AddLearner(node)))

    def promote(self, leader: int, node: int) -> None:
        self.do(NodeInput(leader, PromoteLearner(node)))

    def remove(self, leader: int, node: int) -> None:
        self.do(NodeInput(leader, RemoveServer(node)))

    def transfer(self, leader: int, target: int) -> None:
        self.do(NodeInput(leader, TransferLeadership(target)))

    def partition(self, *groups: tuple[int, ...]) -> None:
        self.do(Partition(tuple(frozenset(group) for group in groups)))

    def heal(self) -> None:
        self.do(Heal())

    def recover(self, node: int) -> None:
        self.do(Recover(node))

    # --- the network ------------------------------------------------------------------------

    def find(
        self,
        kind: str,
        src: int | None = None,
        dst: int | None = None,
        where: Callable[[Message], bool] | None = None,
    ) -> Message:
        """find returns the newest in-flight message of `kind` from src to dst (and `where`).

        The network is sorted by (src, dst, term, ...), so the last match is the one of the
        highest term: the message a script usually means. `where` picks an older one.
        """
        for message in reversed(self.state.network):
            if _matches(message, kind, src, dst) and (where is None or where(message)):
                return message
        raise ScenarioError(f"no {kind} message {src}->{dst} in flight")

    def deliver(
        self,
        kind: str,
        src: int | None = None,
        dst: int | None = None,
        where: Callable[[Message], bool] | None = None,
    ) -> Message:
        message = self.find(kind, src, dst, where)
        self.do(Deliver(message))
        return message

    def duplicate(
        self,
        kind: str,
        src: int | None = None,
        dst: int | None = None,
        where: Callable[[Message], bool] | None = None,
    ) -> None:
        self.do(Duplicate(self.find(kind, src, dst, where)))

    def exchange(self, kind: str, src: int, dst: int) -> None:
        """exchange delivers a request src->dst and then its reply dst->src."""
        self.deliver(kind, src, dst)
        self.deliver(f"{kind}-reply", dst, src)

    def elect(self, candidate: int, voters: tuple[int, ...]) -> None:
        """elect runs prevote and vote rounds with `voters` until `candidate` leads."""
        self.timeout(candidate)
        for voter in voters:
            if self.state.nodes[candidate].role is not Role.PRECANDIDATE:
                break
            self.exchange("prevote", candidate, voter)
        for voter in voters:
            if self.state.nodes[candidate].role is not Role.CANDIDATE:
                break
            self.exchange("vote", candidate, voter)
        if self.state.nodes[candidate].role is not Role.LEADER:
            raise ScenarioError(f"node {candidate} did not become leader")

    def replicate(
        self, leader: int, peer: int, prev: int | None = None, count: int | None = None
    ) -> None:
        """replicate sends one append to `peer` and delivers it and its reply."""
        self.send(leader, peer, prev, count)
        self.exchange("append", leader, peer)


@dataclass(frozen=True, slots=True)
class ScenarioOutcome:
    """ScenarioOutcome: the violations found (empty when none), or why the script diverged."""

    violations: tuple[Violation, ...]
    diverged: str | None
    steps: int
    transcript: str

    @property
    def caught(self) -> bool:
        return bool(self.violations)


def run_scenario(
    script: Callable[[Run], None], size: int, voters: tuple[int, ...] | None = None
) -> ScenarioOutcome:
    """run_scenario runs `script` on a fresh cluster of `size` nodes under whatever is patched.

    `voters` is the initial configuration (default: every node votes, thesis 4.1).
    """
    run = Run(initial_cluster(size, voters))
    start = run.state
    violations: list[Violation] = []
    diverged = None
    try:
        script(run)
    except Violated as stop:
        violations = stop.violations
    except ScenarioError as error:
        diverged = str(error)
    detail = "; ".join(str(v) for v in violations) if violations else None
    return ScenarioOutcome(
        violations=tuple(violations),
        diverged=diverged,
        steps=len(run.steps),
        transcript=format_run(start, run.steps, detail),
    )
