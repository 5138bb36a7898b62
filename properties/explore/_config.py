"""What the explorer explores and what it reports: `ExploreConfig`, `ExploreResult`, presets.

The bounds play the part of a TLC state constraint: a successor that exceeds one (a term above
`max_term`, a log longer than `max_log`, more than `max_messages` in flight) is outside the
model and is neither counted nor expanded. The budgets (client requests, reads, crashes,
duplicates) bound how often an action may happen along a run, so they are part of the
explored state (two runs that reach the same cluster state with different budgets left are
different states).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import spec
from spec import ClusterState

__all__ = ["CONFIGS", "ExploreConfig", "ExploreResult", "config_by_name"]


@dataclass(frozen=True, slots=True)
class ExploreConfig:
    """ExploreConfig is one bounded model: cluster size, bounds, budgets and search options.

    `prefilter` skips node inputs whose documented role guard fails (only a leader takes client
    requests, reads, heartbeats and send-append decisions; a leader's election timer is
    stopped; a node that has not heard from a leader has no lease for CheckQuorum to expire).
    The spec would refuse them anyway, so this only saves the refused calls; turn it off to
    let `cluster_step` judge every input, e.g. for a mutant that changes a guard.

    `append_ranges` explores every (prev_index, count) a leader may choose for SendAppend, not
    only the default "everything from next_index".

    `voters` and `learners` give the initial configuration when it is smaller than the
    universe of `nodes` ids (`spec.initial_cluster`; default: every node votes), so membership
    changes can bring the others in. `max_changes` bounds the membership changes
    (AddLearner, PromoteLearner, RemoveServer) and `max_transfers` the TransferLeadership
    requests per run; both default to 0 (not offered). `max_elections` and `max_drops`, when
    set, bound the election timeouts and message drops per run: a targeted model's state
    constraint (None: unbounded and not counted).

    `fast` runs the interned, memoised engine (`_engine`) when it applies; it explores the
    same states, edges and counterexamples as the plain search, which `fast=False` forces.
    `cross_check` is how many edges each process recomputes with `spec.cluster_step` at the
    start of a fast run, comparing successors, bounds and fingerprints (0: none).
    """

    nodes: int = 3
    max_term: int = 2
    max_log: int = 2
    max_messages: int = 3
    max_requests: int = 1
    max_reads: int = 0
    max_crashes: int = 1
    max_duplicates: int = 0
    partitions: bool = False
    heartbeats: bool = True
    check_quorum: bool = True
    append_ranges: bool = False
    prefilter: bool = True
    symmetry: bool = True
    workers: int = 1
    max_depth: int | None = None
    max_states: int | None = None
    max_seconds: float | None = None
    progress: bool = False
    progress_interval: float = 2.0
    fast: bool = True
    cross_check: int = 1000
    voters: tuple[int, ...] | None = None
    learners: tuple[int, ...] = ()
    max_changes: int = 0
    max_transfers: int = 0
    max_elections: int | None = None
    max_drops: int | None = None

    def __post_init__(self) -> None:
        if self.nodes < 1:
            raise ValueError("a cluster needs at least one node")
        if self.workers < 1:
            raise ValueError("workers must be at least 1")
        for name in (
            "max_term",
            "max_log",
            "max_messages",
            "max_requests",
            "max_reads",
            "max_changes",
            "max_transfers",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        if self.cross_check < 0:
            raise ValueError("cross_check must not be negative")
        if self.max_crashes < 0 or self.max_duplicates < 0:
            raise ValueError("budgets must not be negative")
        for name in ("max_elections", "max_drops"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must not be negative")
        members = set(self.voters or ()) | set(self.learners)
        if not members <= set(range(self.nodes)):
            raise ValueError(f"the initial configuration names nodes outside 0..{self.nodes - 1}")

    def initial(self) -> ClusterState:
        """initial is the state every run starts from (`spec.initial_cluster`)."""
        return spec.initial_cluster(self.nodes, self.voters, self.learners)

    def with_overrides(self, **changes: object) -> ExploreConfig:
        """with_overrides is `replace` that ignores None values (unset command-line flags)."""
        known = {f.name for f in fields(self)}
        unknown = set(changes) - known
        if unknown:
            raise ValueError(f"unknown config fields: {sorted(unknown)}")
        return replace(self, **{k: v for k, v in changes.items() if v is not None})  # type: ignore[arg-type]

    def describe(self) -> str:
        """describe is a one-line summary of the bounds, for progress output and reports."""
        extra = ""
        if self.voters is not None or self.learners:
            voters = list(self.voters or range(self.nodes))
            extra += f" voters={voters} learners={list(self.learners)}"
        if self.max_changes or self.max_transfers:
            extra += f" changes={self.max_changes} transfers={self.max_transfers}"
        if self.max_elections is not None:
            extra += f" elections={self.max_elections}"
        if self.max_drops is not None:
            extra += f" drops={self.max_drops}"
        if self.max_depth is not None:
            extra += f" max_depth={self.max_depth}"
        return (
            f"nodes={self.nodes} max_term={self.max_term} max_log={self.max_log} "
            f"max_messages={self.max_messages} requests={self.max_requests} "
            f"reads={self.max_reads} crashes={self.max_crashes} "
            f"duplicates={self.max_duplicates} partitions={self.partitions} "
            f"symmetry={self.symmetry} workers={self.workers}{extra}"
        )


@dataclass(frozen=True, slots=True)
class ExploreResult:
    """ExploreResult is the verdict of one exploration and what it cost.

    `ok` is False only when an invariant failed; then `violation` names it and
    `counterexample` is the shortest run to it, formatted by `properties.format_run`.
    `complete` is False when a depth, state or time limit stopped the search early (the
    verdict then covers only what was explored). `edges` counts explored transitions.
    `cpu_seconds` is the CPU time of the search and its workers: on a busy machine it says
    more about the explorer's speed than the wall-clock `seconds` do.
    """

    ok: bool
    distinct_states: int
    depth: int
    seconds: float
    states_per_second: float
    counterexample: str | None
    violation: str | None
    edges: int = 0
    complete: bool = True
    config: ExploreConfig | None = None
    cpu_seconds: float = 0.0

    def summary(self) -> str:
        """summary is the one-paragraph report the command line prints."""
        verdict = "ok" if self.ok else f"VIOLATION of {self.violation}"
        scope = "complete" if self.complete else "stopped early (bounded by a limit)"
        return (
            f"{verdict}: {self.distinct_states} distinct states, {self.edges} edges, "
            f"depth {self.depth}, {self.seconds:.1f} s, {self.states_per_second:.0f} states/s, "
            f"{self.cpu_seconds:.1f} s CPU, {scope}"
        )


# `ci` keeps the full bounds the brief asks for (3 nodes, prevote, crash/restart, terms <= 2,
# logs <= 2, one client request, 3 messages in flight) and bounds the BFS depth instead: every
# run of up to 12 actions is checked (56,470 distinct states, 183,119 edges). Unbounded in
# depth this model (`deep` below) has over a million states: more than a 30 s budget allows
# even at the fast engine's rate, so the depth bound stays.
CI = ExploreConfig(
    nodes=3,
    max_term=2,
    max_log=2,
    max_messages=3,
    max_requests=1,
    max_reads=0,
    max_crashes=1,
    workers=1,  # the fast engine's memo tables do not survive a fork: one process is faster
    max_depth=12,
)

# `deep` is the `ci` model with no depth bound: every reachable state of it, well over a
# million. One run on a busy 2-core machine reached 4,489,535 distinct states at depth 18
# (1,772,622 of them still to expand) in 45 minutes without a violation and was stopped
# there: a complete run needs hours at that load.
DEEP = replace(CI, max_depth=None)

# `wide` was `deep` before: four messages in flight and one read as well. Its full run is
# larger still and has not been completed; it stays for runs bounded by --max-states.
WIDE = ExploreConfig(
    nodes=3,
    max_term=2,
    max_log=2,
    max_messages=4,
    max_requests=1,
    max_reads=1,
    max_crashes=1,
    workers=2,
)

# `membership`: three voters and one outsider (thesis 4.1, 4.2.1). A leader must commit an
# entry of its term before it may change the configuration (a client request or the
# operator's AppendSentinel supplies one); then it can add node 3 as a learner, catch it up,
# promote it, or remove a server (two changes per run). Every run of up to 14 actions is
# checked: a learner's configuration commits within it; a promotion needs about 20 actions
# on four nodes (reached by `membership-small`).
MEMBERSHIP = ExploreConfig(
    nodes=4,
    voters=(0, 1, 2),
    max_term=2,
    max_log=3,
    max_messages=3,
    max_requests=1,
    max_crashes=0,
    max_changes=2,
    heartbeats=False,
    max_depth=14,
)

# `membership-small`: two voters and one outsider, every run of up to 20 actions: the learner
# joins, catches up and is promoted (depth 17), or a voter is removed, with elections and
# check-quorum in between.
MEMBERSHIP_SMALL = ExploreConfig(
    nodes=3,
    voters=(0, 1),
    max_term=2,
    max_log=4,
    max_messages=3,
    max_requests=1,
    max_crashes=0,
    max_changes=3,
    heartbeats=False,
    max_depth=20,
)

# `transfer`: three voters, one leadership transfer per run (thesis 3.10): the catch-up
# appends, TimeoutNow, the target's election without prevote, and the transfer ending on
# the leader's next timeout. A transfer completes at depth 14.
TRANSFER = ExploreConfig(
    nodes=3,
    max_term=2,
    max_log=2,
    max_messages=3,
    max_requests=1,
    max_crashes=0,
    max_transfers=1,
    max_depth=15,
)

# `config-race`: the single-server change bug's model (Ongaro, raft-dev 2015): four voters,
# removals only, two changes by two leaders. Its shortest violating run under the bug is
# about 31 actions (three prevote elections on four voters); the budgets (three election
# timeouts, four drops, no requests, crashes, heartbeats or check-quorum) keep the frontier
# small, but BFS still has not reached that depth in the time a CI run allows.
CONFIG_RACE = ExploreConfig(
    nodes=4,
    max_term=3,
    max_log=1,
    max_messages=3,
    max_requests=0,
    max_crashes=0,
    max_changes=2,
    max_elections=3,
    max_drops=4,
    heartbeats=False,
    check_quorum=False,
)

CONFIGS: dict[str, ExploreConfig] = {
    "ci": CI,
    "deep": DEEP,
    "wide": WIDE,
    "membership": MEMBERSHIP,
    "membership-small": MEMBERSHIP_SMALL,
    "transfer": TRANSFER,
    "config-race": CONFIG_RACE,
}


def config_by_name(name: str) -> ExploreConfig:
    """config_by_name returns a preset (`ci` for make check, `deep` for the long run)."""
    try:
        return CONFIGS[name]
    except KeyError:
        raise ValueError(f"unknown config {name!r}; choose from {sorted(CONFIGS)}") from None
