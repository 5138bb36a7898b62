"""The breadth-first search: visited fingerprints, parent pointers, levels, workers.

BFS by levels (TLC style). `visited` maps each fingerprint to a packed parent pointer
(parent fingerprint and the index of the action in the parent's enumeration), so a
counterexample is rebuilt by replaying actions from the initial state: the run printed is a
real run of the spec, and BFS order makes it a shortest one. Each stored state is the
concrete successor of its stored parent (never a relabelled copy), which is what makes the
replay exact.

Every explored edge goes through `check_transition` and every new state through
`check_state`. With `workers` > 1 a level's frontier is split; the extra workers are forked
after any patching (so a mutant or `step_fn` is seen by them), read the visited set as of the
level's start, and send back only (fingerprint, parent, action index) for states new to them;
the parent process rebuilds those states with one step each and merges them.
"""

from __future__ import annotations

import multiprocessing
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection

import spec
from spec import Action, ClusterResult, ClusterState

import properties
from properties.explore._actions import Budget, enumerate_actions, next_budget, within_bounds
from properties.explore._canon import MASK64, fingerprint
from properties.explore._config import ExploreConfig, ExploreResult

__all__ = ["StepFn", "explore"]

StepFn = Callable[[ClusterState, Action], ClusterResult]

_INDEX_BITS = 16
_INDEX_MASK = (1 << _INDEX_BITS) - 1
_ROOT = -1
_MIN_PARALLEL = 64  # smaller levels are not worth a fork


@dataclass(slots=True)
class _Found:
    """_Found is a violation: the edge that reached it and what broke."""

    parent: int  # fingerprint of the parent state
    index: int  # action index in the parent's enumeration
    name: str
    detail: str


@dataclass(slots=True)
class _Stats:
    edges: int = 0
    found: _Found | None = None
    fresh: list[tuple[int, ClusterState, Budget]] = field(default_factory=list)


class _Stop(Exception):
    """_Stop ends the search early because a state or time limit was reached."""


@dataclass(slots=True)
class _Progress:
    config: ExploreConfig
    started: float
    last: float = 0.0
    stopped: bool = False

    def tick(self, depth: int, distinct: int, frontier: int) -> None:
        now = time.monotonic()
        config = self.config
        if config.max_seconds is not None and now - self.started > config.max_seconds:
            self.stopped = True
            raise _Stop
        if config.max_states is not None and distinct >= config.max_states:
            self.stopped = True
            raise _Stop
        if config.progress and now - self.last >= config.progress_interval:
            self.last = now
            self.report(depth, distinct, frontier)

    def report(self, depth: int, distinct: int, frontier: int) -> None:
        elapsed = time.monotonic() - self.started
        rate = distinct / elapsed if elapsed > 0 else 0.0
        print(
            f"explore: depth {depth} distinct {distinct} frontier {frontier} "
            f"rate {rate:.0f} states/s elapsed {elapsed:.1f} s",
            file=sys.stderr,
            flush=True,
        )


def _expand(
    chunk: list[tuple[ClusterState, Budget, int]],
    known: dict[int, int],
    fresh: dict[int, int],
    step: StepFn,
    config: ExploreConfig,
    progress: _Progress | None,
    depth: int,
    keep: bool,
) -> _Stats:
    """_expand explores every edge out of `chunk`; new fingerprints go into `fresh`.

    `known` is only read (for a forked worker it is the level-start snapshot); in the parent
    process `known` and `fresh` are the same dict.
    """
    stats = _Stats()
    check_state = properties.check_state
    check_transition = properties.check_transition
    symmetry = config.symmetry
    same = known is fresh
    for number, (state, budget, fp) in enumerate(chunk):
        if progress is not None and number % 64 == 0:
            progress.tick(depth, len(fresh), len(chunk) - number)
        for index, action in enumerate(enumerate_actions(state, budget, config)):
            result = step(state, action)
            if result.rejected is not None:
                continue
            new = result.state
            if not within_bounds(new, config):
                continue
            stats.edges += 1
            broken = check_transition(state, action, new)
            if broken:
                stats.found = _Found(fp, index, broken[0].invariant, broken[0].detail)
                return stats
            budget2 = next_budget(budget, action)
            fp2 = fingerprint(new, budget2, symmetry)
            if fp2 in fresh or (not same and fp2 in known):
                continue
            fresh[fp2] = (fp << _INDEX_BITS) | index
            bad = check_state(new)
            if bad:
                stats.found = _Found(fp, index, bad[0].invariant, bad[0].detail)
                return stats
            if keep:
                stats.fresh.append((fp2, new, budget2))
    return stats


def _worker(
    conn: Connection,
    chunk: list[tuple[ClusterState, Budget, int]],
    known: dict[int, int],
    step: StepFn,
    config: ExploreConfig,
    depth: int,
) -> None:
    """_worker runs in a forked process and reports its new fingerprints to the parent."""
    fresh: dict[int, int] = {}
    stats = _expand(chunk, known, fresh, step, config, None, depth, keep=False)
    found = None
    if stats.found is not None:
        f = stats.found
        found = (f.parent, f.index, f.name, f.detail)
    conn.send((stats.edges, found, list(fresh.items())))
    conn.close()


def _replay(
    initial: ClusterState, indexes: list[int], step: StepFn, config: ExploreConfig
) -> list[tuple[Action, ClusterState]]:
    steps: list[tuple[Action, ClusterState]] = []
    state: ClusterState = initial
    budget: Budget = (0, 0, 0, 0)
    for index in indexes:
        action = enumerate_actions(state, budget, config)[index]
        state = step(state, action).state
        budget = next_budget(budget, action)
        steps.append((action, state))
    return steps


def _path_to(visited: dict[int, int], fp: int) -> list[int]:
    indexes: list[int] = []
    pointer = visited[fp]
    while pointer != _ROOT:
        indexes.append(pointer & _INDEX_MASK)
        pointer = visited[pointer >> _INDEX_BITS]
    indexes.reverse()
    return indexes


def _counterexample(
    initial: ClusterState,
    visited: dict[int, int],
    found: _Found,
    step: StepFn,
    config: ExploreConfig,
) -> str:
    indexes = [*_path_to(visited, found.parent), found.index]
    steps = _replay(initial, indexes, step, config)
    return properties.format_run(initial, steps, f"{found.name}: {found.detail}")


def _merge(
    chunk: list[tuple[ClusterState, Budget, int]],
    visited: dict[int, int],
    entries: list[tuple[int, int]],
    step: StepFn,
    config: ExploreConfig,
    out: list[tuple[ClusterState, Budget, int]],
) -> None:
    """_merge adds a worker's new fingerprints, rebuilding each new state with one step."""
    parents = {fp: (state, budget) for state, budget, fp in chunk}
    actions_of: dict[int, list[Action]] = {}
    for fp2, pointer in entries:
        if fp2 in visited:
            continue
        visited[fp2] = pointer
        parent_fp = pointer >> _INDEX_BITS
        state, budget = parents[parent_fp]
        actions = actions_of.get(parent_fp)
        if actions is None:
            actions = actions_of[parent_fp] = enumerate_actions(state, budget, config)
        action = actions[pointer & _INDEX_MASK]
        out.append((step(state, action).state, next_budget(budget, action), fp2))


def _level(
    frontier: list[tuple[ClusterState, Budget, int]],
    visited: dict[int, int],
    step: StepFn,
    config: ExploreConfig,
    progress: _Progress,
    depth: int,
) -> tuple[list[tuple[ClusterState, Budget, int]], int, _Found | None]:
    workers = config.workers if len(frontier) >= _MIN_PARALLEL else 1
    if workers == 1:
        stats = _expand(frontier, visited, visited, step, config, progress, depth, keep=True)
        return [(s, b, fp) for fp, s, b in stats.fresh], stats.edges, stats.found
    chunks = [frontier[k::workers] for k in range(workers)]
    context = multiprocessing.get_context("fork")
    children: list[tuple[multiprocessing.process.BaseProcess, Connection]] = []
    try:
        for k in range(1, workers):
            receive, send = context.Pipe(duplex=False)
            child = context.Process(
                target=_worker, args=(send, chunks[k], visited, step, config, depth), daemon=True
            )
            child.start()
            send.close()
            children.append((child, receive))
        stats = _expand(chunks[0], visited, visited, step, config, progress, depth, keep=True)
        out = [(s, b, fp) for fp, s, b in stats.fresh]
        edges = stats.edges
        found = stats.found
        for k, (child, receive) in enumerate(children, start=1):
            if found is not None:
                break
            child_edges, child_found, entries = receive.recv()
            edges += child_edges
            if child_found is not None:
                found = _Found(*child_found)
                break
            _merge(chunks[k], visited, entries, step, config, out)
            progress.tick(depth, len(visited), 0)
        return out, edges, found
    finally:
        for child, receive in children:
            receive.close()
            if child.is_alive():
                child.terminate()
            child.join()


def explore(config: ExploreConfig, step_fn: StepFn | None = None) -> ExploreResult:
    """explore checks every invariant on every state reachable within `config`'s bounds.

    `step_fn` replaces `spec.cluster_step` (for seeded bugs); by default the step is looked
    up on the `spec` package when the search starts, so `unittest.mock.patch` of spec's
    attributes is honoured, including by forked workers.
    """
    step: StepFn = step_fn if step_fn is not None else spec.cluster_step
    started = time.monotonic()
    progress = _Progress(config, started, last=started)
    initial = spec.initial_cluster(config.nodes)
    budget0: Budget = (0, 0, 0, 0)
    fp0 = fingerprint(initial, budget0, config.symmetry)
    visited: dict[int, int] = {fp0: _ROOT}
    edges = 0
    depth = 0
    found: _Found | None = None
    complete = True
    counterexample: str | None = None
    violation: str | None = None
    bad = properties.check_state(initial)
    if bad:
        violation = bad[0].invariant
        counterexample = properties.format_run(initial, [], str(bad[0]))
    frontier = [(initial, budget0, fp0)] if not bad else []
    try:
        while frontier:
            if config.max_depth is not None and depth >= config.max_depth:
                complete = False
                break
            frontier, level_edges, found = _level(
                frontier, visited, step, config, progress, depth + 1
            )
            edges += level_edges
            if found is not None or frontier:
                depth += 1
            if found is not None:
                break
    except _Stop:
        complete = False
    if found is not None:
        violation = found.name
        counterexample = _counterexample(initial, visited, found, step, config)
    seconds = time.monotonic() - started
    if config.progress:
        progress.report(depth, len(visited), len(frontier))
    return ExploreResult(
        ok=violation is None,
        distinct_states=len(visited),
        depth=depth,
        seconds=seconds,
        states_per_second=len(visited) / seconds if seconds > 0 else 0.0,
        counterexample=counterexample,
        violation=violation,
        edges=edges,
        complete=complete and violation is None,
        config=config,
    )


assert MASK64 >> 63 == 1  # fingerprints are unsigned 64-bit, so pointers pack losslessly
