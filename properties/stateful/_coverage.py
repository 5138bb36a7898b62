"""Coverage of the stateful engine: did the runs reach the states that make a check mean much?

A run that never elects a leader checks almost nothing, so the engine counts, per run, whether
it elected a leader, committed an entry, answered a read, reached a second term, and so on.
`Coverage` is the mutable tally the machines report into; `as_dict` is what the runner
returns and the CLI prints.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from spec import AppendRequest, ClusterState, EntryKind, Log, Role

__all__ = ["COVERAGE_KEYS", "Coverage", "RunFlags"]

COVERAGE_KEYS: tuple[str, ...] = (
    "runs",
    "elected_leader",
    "committed_entry",
    "committed_client_entry",
    "answered_read",
    "second_term",
    "leader_changed",
    "crashed_and_recovered",
    "partitioned",
    "config_committed",
    "learner_in_use",
    "timeout_now_sent",
    "sentinel_on_request",
)
"""COVERAGE_KEYS lists the counters, in the order the CLI prints them."""


@dataclass(slots=True)
class RunFlags:
    """RunFlags is what one run (one Hypothesis example) has reached so far."""

    size: int = 0
    elected_leader: bool = False
    committed_entry: bool = False
    committed_client_entry: bool = False
    answered_read: bool = False
    second_term: bool = False
    leader_changed: bool = False
    crashed_and_recovered: bool = False
    partitioned: bool = False
    config_committed: bool = False
    learner_in_use: bool = False
    timeout_now_sent: bool = False
    sentinel_on_request: bool = False  # a leader appended a sentinel when asked (AppendSentinel)
    leaders_seen: set[tuple[int, int]] = field(default_factory=set)

    def observe(self, cluster: ClusterState) -> None:
        """observe folds one reachable state into the flags."""
        for node in cluster.nodes:
            if node.role is Role.LEADER:
                self.elected_leader = True
                self.leaders_seen.add((node.term, node.id))
            if node.commit > 0:
                self.committed_entry = True
                if not self.committed_client_entry and any(
                    entry.kind is EntryKind.NORMAL for entry in node.log[: node.commit]
                ):
                    self.committed_client_entry = True
            if node.term >= 2:
                self.second_term = True
            if not (self.config_committed and self.learner_in_use):
                self._observe_config(node.log, node.commit)
        if len(self.leaders_seen) >= 2:
            self.leader_changed = True
        if cluster.partition:
            self.partitioned = True
        if not self.answered_read and any(record.answered is not None for record in cluster.reads):
            self.answered_read = True
        if not self.timeout_now_sent and any(
            isinstance(message, AppendRequest) and message.timeout_now
            for message in cluster.network
        ):
            self.timeout_now_sent = True

    def _observe_config(self, log: Log, commit: int) -> None:
        """_observe_config notes committed membership changes and configs with learners."""
        for index, entry in enumerate(log, start=1):
            if entry.kind is not EntryKind.CONFIG:
                continue
            if index <= commit:
                self.config_committed = True
            if entry.config is not None and entry.config.learners:
                self.learner_in_use = True


@dataclass(slots=True)
class Coverage:
    """Coverage tallies finished runs: how many reached each milestone, and by cluster size."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COVERAGE_KEYS, 0))
    sizes: dict[int, int] = field(default_factory=dict)
    steps: int = 0

    def record(self, flags: RunFlags, steps: int) -> None:
        """record adds one finished run and the number of cluster steps it took."""
        self.steps += steps
        self.counts["runs"] += 1
        self.sizes[flags.size] = self.sizes.get(flags.size, 0) + 1
        for key in COVERAGE_KEYS[1:]:
            if getattr(flags, key):
                self.counts[key] += 1

    def as_dict(self) -> dict[str, int]:
        """as_dict is the flat report: milestone counts, then `size_N` run counts."""
        report = dict(self.counts)
        for size in sorted(self.sizes):
            report[f"size_{size}"] = self.sizes[size]
        return report
