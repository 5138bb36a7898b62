"""check_traces: replay every node of every recorded run, then the cross-node checks.

A run is the set of node traces in one directory that share a cluster id. Each node's
events are replayed through the spec (``NodeReplay``); its first divergence stops that
node. Every event also feeds the run's ``GlobalFacts``. The result says what was checked,
which relaxations were used how often, and where a node was checked globally only.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from properties.conformance._global import NodeFacts, merge_facts
from properties.conformance._mapping import MappingError
from properties.conformance._members import Universe, scan_universe
from properties.conformance._reader import NodeTrace, TraceError, read_trace, trace_files
from properties.conformance._replay import Divergence, NodeReplay
from spec import NodeState

__all__ = ["ConformanceResult", "NodeOutcome", "check_file", "check_node", "check_traces"]


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


@dataclass(slots=True)
class NodeOutcome:
    """NodeOutcome is everything checking one node's file yields (picklable)."""

    path: Path
    node: str
    cluster: str
    voters: list[str]  # the run's universe: every node id it mentions
    facts: NodeFacts
    events: int = 0
    spec_steps: int = 0
    divergence: Divergence | None = None
    final: NodeState | None = None
    global_only: list[str] = field(default_factory=list)
    relaxations: Counter[str] = field(default_factory=Counter)
    error: str | None = None


@contextlib.contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """_no_cyclic_gc pauses the cyclic collector while traces are checked.

    A check allocates millions of short-lived, acyclic objects (parsed events, spec states),
    which reference counting frees; the cyclic collector would still traverse every live
    event again and again (about a quarter of the checker's CPU). It is restored after.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _start_method() -> str:
    """_start_method: fork (no re-import, workers start at once) in a single-threaded
    process on a platform that has it; spawn otherwise, since forking a process with other
    threads (grpc, an asyncio executor) can copy a lock another thread holds."""
    if threading.active_count() == 1 and "fork" in multiprocessing.get_all_start_methods():
        return "fork"
    return "spawn"


def check_node(trace: NodeTrace, universe: Universe | None = None) -> NodeOutcome:
    """check_node replays one node's trace and gathers its cross-node evidence.

    ``universe`` is every node id of the run (``scan_universe``); without it, the ids of
    this trace's headers.
    """
    facts = NodeFacts(trace.node)
    if universe is None:
        names = {trace.node}
        for segment in trace.segments:
            names.update(segment.header["voters"], segment.header.get("learners", ()))
        universe = Universe(tuple(sorted(names)), {})
    outcome = NodeOutcome(trace.path, trace.node, trace.cluster, list(universe.names), facts)
    for segment in trace.segments:
        header = segment.header
        if not header.get("join") and trace.node not in (
            *header["voters"],
            *header.get("learners", ()),
        ):
            outcome.error = f"{trace.path}: node {trace.node!r} is not one of its members"
            return outcome
    replay = NodeReplay(trace.node, universe.names, str(trace.path), universe.addresses)
    facts.file = trace.path.name
    observe = facts.observe
    process = replay.process
    for segment in trace.segments:
        try:
            replay.begin_segment(segment.header)
        except MappingError as exc:
            outcome.error = f"{trace.path}:{segment.first_line}: {exc}"
            return outcome
        for event, line in zip(segment.events, segment.lines, strict=True):
            observe(event, line)
            if outcome.divergence is None:
                outcome.divergence = process(event, line)
        if replay.global_only is not None:
            outcome.global_only.append(f"node {trace.node} ({trace.path}): {replay.global_only}")
    outcome.events = replay.stats.events
    outcome.spec_steps = replay.stats.spec_steps
    outcome.relaxations = replay.stats.relaxations
    if outcome.divergence is None and replay.active:
        outcome.final = replay.state
    return outcome


def check_file(path: Path, universe: Universe | None = None) -> NodeOutcome:
    """check_file reads and checks one file (the unit of work of a parallel check)."""
    with _no_cyclic_gc():
        try:
            trace = read_trace(path)
        except (TraceError, OSError) as exc:
            return NodeOutcome(path, "?", "?", [], NodeFacts("?"), error=str(exc))
        return check_node(trace, universe)


def _merge_run(run: list[NodeOutcome], result: ConformanceResult) -> None:
    names = [o.node for o in run]
    if len(set(names)) != len(names):
        result.errors.append(f"{run[0].path.parent}: two trace files for one node {names}")
        return
    final: dict[str, NodeState] = {}
    for outcome in run:
        result.nodes += 1
        result.events += outcome.events
        result.spec_steps += outcome.spec_steps
        result.relaxations.update(outcome.relaxations)
        result.global_only.extend(outcome.global_only)
        if outcome.divergence is not None:
            result.divergences.append(outcome.divergence)
        if outcome.final is not None:
            final[outcome.node] = outcome.final
    complete = set(final) == set(run[0].voters)
    violations = merge_facts([o.facts for o in run], final if complete else None)
    result.violations.extend(f"{run[0].path.parent}: {v}" for v in violations)


def check_traces(paths: Iterable[Path | str], jobs: int = 1) -> ConformanceResult:
    """check_traces checks every trace file under ``paths`` (files or directories).

    With ``jobs`` > 1 the node files are read and replayed in that many processes (they are
    independent); the cross-node checks then run on the merged evidence.
    """
    with _no_cyclic_gc():
        return _check_traces(paths, jobs)


def _check_traces(paths: Iterable[Path | str], jobs: int) -> ConformanceResult:
    result = ConformanceResult()
    started = time.perf_counter()
    try:
        files = trace_files(paths)
    except TraceError as exc:
        result.errors.append(str(exc))
        return result
    if not files:
        result.errors.append("no trace files found")
    universes = scan_universe(files)
    per_file = [universes.get(path.parent) for path in files]
    if jobs > 1 and len(files) > 1:
        context = multiprocessing.get_context(_start_method())
        with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
            outcomes = list(pool.map(check_file, files, per_file))
    else:
        outcomes = [check_file(path, u) for path, u in zip(files, per_file, strict=True)]
    runs: dict[tuple[Path, str], list[NodeOutcome]] = {}
    for outcome in outcomes:
        if outcome.error is not None:
            result.errors.append(outcome.error)
            continue
        runs.setdefault((outcome.path.parent, outcome.cluster), []).append(outcome)
    for run in runs.values():
        result.runs += 1
        _merge_run(run, result)
    result.seconds = time.perf_counter() - started
    return result
