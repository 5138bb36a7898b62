"""check_traces: replay every node of every recorded run, then the cross-node checks.

A run is the set of node traces in one directory that share a cluster id. Each node's
events are replayed through the spec (``NodeReplay``); its first divergence stops that
node. Every event also feeds the run's ``GlobalFacts``. The result says what was checked,
which relaxations were used how often, and where a node was checked globally only.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from properties.conformance._global import GlobalFacts
from properties.conformance._reader import NodeTrace, TraceError, read_trace, trace_files
from properties.conformance._replay import Divergence, NodeReplay
from spec import NodeState

__all__ = ["ConformanceResult", "check_traces"]


@dataclass(slots=True)
class ConformanceResult:
    """ConformanceResult: ``ok`` only if every trace conforms and no global check failed."""

    runs: int = 0
    nodes: int = 0
    events: int = 0
    spec_steps: int = 0
    seconds: float = 0.0
    divergences: list[Divergence] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    relaxations: Counter[str] = field(default_factory=Counter)
    global_only: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.divergences or self.violations or self.errors)

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0

    def render(self) -> str:
        """render is the human report: failures first, then what was relaxed, then totals."""
        lines: list[str] = []
        lines.extend(f"ERROR {error}" for error in self.errors)
        for divergence in self.divergences:
            lines.append(divergence.render())
        lines.extend(f"VIOLATION {violation}" for violation in self.violations)
        lines.extend(f"checked globally only: {text}" for text in self.global_only)
        if self.relaxations:
            lines.append("documented relaxations used:")
            lines.extend(
                f"  {count:6d}  {name}" for name, count in sorted(self.relaxations.items())
            )
        verdict = "OK" if self.ok else "FAILED"
        lines.append(
            f"conformance {verdict}: {self.runs} run(s), {self.nodes} node trace(s), "
            f"{self.events} events, {self.spec_steps} spec steps in {self.seconds:.2f}s "
            f"({self.events_per_second:,.0f} events/s)"
        )
        return "\n".join(lines)


def _runs(traces: list[NodeTrace]) -> list[list[NodeTrace]]:
    groups: dict[tuple[Path, str], list[NodeTrace]] = {}
    for trace in traces:
        groups.setdefault((trace.path.parent, trace.cluster), []).append(trace)
    return list(groups.values())


def _check_run(run: list[NodeTrace], result: ConformanceResult) -> None:
    facts = GlobalFacts(nodes={t.node for t in run})
    final: dict[str, NodeState] = {}
    complete = True
    names = [t.node for t in run]
    if len(set(names)) != len(names):
        result.errors.append(f"{run[0].path.parent}: two trace files for one node {names}")
        return
    for trace in run:
        replay = NodeReplay(trace.node, trace.voters, str(trace.path))
        diverged = False
        for segment in trace.segments:
            for event, line in zip(segment.events, segment.lines, strict=True):
                where = f"{trace.path.name}:{line}"
                facts.observe(trace.node, event, where)
                if diverged:
                    continue
                divergence = replay.process(event, line)
                if divergence is not None:
                    result.divergences.append(divergence)
                    diverged = True
            if replay.global_only is not None:
                result.global_only.append(f"node {trace.node} ({trace.path}): {replay.global_only}")
        result.nodes += 1
        result.events += replay.stats.events
        result.spec_steps += replay.stats.spec_steps
        result.relaxations.update(replay.stats.relaxations)
        if diverged or not replay.active or replay.state is None:
            complete = False
        else:
            final[trace.node] = replay.state
    voters = set(run[0].voters)
    if set(final) != voters:
        complete = False
    result.violations.extend(
        f"{run[0].path.parent}: {v}" for v in facts.finish(final if complete else None)
    )


def check_traces(paths: Iterable[Path | str]) -> ConformanceResult:
    """check_traces checks every trace file under ``paths`` (files or directories)."""
    result = ConformanceResult()
    started = time.perf_counter()
    traces: list[NodeTrace] = []
    try:
        files = trace_files(paths)
    except TraceError as exc:
        result.errors.append(str(exc))
        return result
    if not files:
        result.errors.append("no trace files found")
    for path in files:
        try:
            traces.append(read_trace(path))
        except (TraceError, OSError) as exc:
            result.errors.append(str(exc))
    for run in _runs(traces):
        result.runs += 1
        _check_run(run, result)
    result.seconds = time.perf_counter() - started
    return result
