"""The breadth-first search: visited fingerprints, parent pointers, levels, workers.

BFS by levels (TLC style). `visited` maps each fingerprint to a packed parent pointer (the
parent's fingerprint and the index of the action in the parent's enumeration), so a
counterexample is rebuilt by replaying actions from the initial state: the run printed is a
real run of the spec, and BFS order makes it a shortest one. Each stored state is the
concrete successor of its stored parent (never a relabelled copy), which is what makes the
replay exact.

Every explored edge goes through `check_transition` and every new state through
`check_state`. With `workers` > 1 a level's frontier is split; the extra workers are forked
after any patching (so a mutant or `step_fn` is seen by them), read the visited set as of the
level's start, and send back only (fingerprint, pointer) for states new to them; the parent
process rebuilds those states with one step each and merges them.

This is the plain search over `ClusterState`s. `_fast._FastSearch` subclasses it and only
replaces what a state is (an interned int tuple) and how a level is expanded and merged;
levels, workers, limits, progress and counterexample replay are the code below.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import properties
from properties.explore._actions import ZERO_BUDGET, Budget, Menu, next_budget, within_bounds
from properties.explore._canon import Fingerprinter
from properties.explore._config import ExploreConfig, ExploreResult
from spec import Action, ClusterResult, ClusterState

__all__ = ["Frontier", "StepFn"]

StepFn = Callable[[ClusterState, Action], ClusterResult]
Frontier = list[tuple[Any, Budget, int]]  # a state (as the search keeps it), budget, fp

_INDEX_BITS = 16
_INDEX_MASK = (1 << _INDEX_BITS) - 1
_ROOT = -1
_MIN_PARALLEL = 200  # smaller levels are not worth a fork
_TICK_EVERY = 32  # states between progress / limit checks


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
    fresh: Frontier = field(default_factory=list)


def _cpu() -> float:
    """CPU seconds of this process and its finished children (the forked workers)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


class _StopError(Exception):
    """_StopError ends the search early because a state or time limit was reached."""


class _Search:
    """_Search is one exploration: its step function, caches, visited set and clock."""

    def __init__(self, config: ExploreConfig, step: StepFn) -> None:
        self.config = config
        self.step = step
        self.fingerprint = Fingerprinter(config.nodes, config.symmetry)
        self.menu = Menu(config)
        self.started = time.monotonic()
        self.cpu_started = _cpu()
        self.last_report = self.started
        self.visited: dict[int, int] = {}
        self.depth = 0
        self.frontier_size = 0

    # --- progress and limits -------------------------------------------------------------

    def tick(self, distinct: int) -> None:
        now = time.monotonic()
        config = self.config
        if config.max_seconds is not None and now - self.started > config.max_seconds:
            raise _StopError
        if config.max_states is not None and distinct >= config.max_states:
            raise _StopError
        if config.progress and now - self.last_report >= config.progress_interval:
            self.last_report = now
            self.report(distinct)

    def report(self, distinct: int) -> None:
        elapsed = time.monotonic() - self.started
        rate = distinct / elapsed if elapsed > 0 else 0.0
        print(
            f"explore: depth {self.depth} distinct {distinct} frontier {self.frontier_size} "
            f"rate {rate:.0f} states/s elapsed {elapsed:.1f} s",
            file=sys.stderr,
            flush=True,
        )

    # --- expansion -----------------------------------------------------------------------

    def root(self, initial: ClusterState, budget: Budget) -> tuple[Any, Budget, int]:
        """root is the frontier entry of the initial state."""
        return (initial, budget, self.fingerprint(initial, budget))

    def expand(self, chunk: Frontier, fresh: dict[int, int], keep: bool, tick: bool) -> _Stats:
        """expand explores every edge out of `chunk`; new fingerprints go into `fresh`.

        `self.visited` is only read here unless `fresh` is it (in a forked worker it is the
        snapshot taken when the level began).
        """
        stats = _Stats()
        known = self.visited
        same = known is fresh
        step = self.step
        config = self.config
        menu = self.menu
        fingerprint = self.fingerprint
        check_state = properties.check_state
        check_transition = properties.check_transition
        for number, (state, budget, fp) in enumerate(chunk):
            if tick and number % _TICK_EVERY == 0:
                self.tick(len(fresh))
            for index, action in enumerate(menu(state, budget)):
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
                budget2 = next_budget(budget, action, config)
                fp2 = fingerprint(new, budget2)
                if fp2 in fresh or (not same and fp2 in known):
                    continue
                fresh[fp2] = (fp << _INDEX_BITS) | index
                bad = check_state(new)
                if bad:
                    stats.found = _Found(fp, index, bad[0].invariant, bad[0].detail)
                    return stats
                if keep:
                    stats.fresh.append((new, budget2, fp2))
        return stats

    def worker(self, conn: Connection, chunk: Frontier) -> None:
        """worker runs in a forked process and reports its new fingerprints to the parent."""
        fresh: dict[int, int] = {}
        stats = self.expand(chunk, fresh, keep=False, tick=False)
        found = None
        if stats.found is not None:
            f = stats.found
            found = (f.parent, f.index, f.name, f.detail)
        conn.send((stats.edges, found, list(fresh.items())))
        conn.close()

    def merge(self, chunk: Frontier, entries: list[tuple[int, int]], out: Frontier) -> None:
        """merge adds a worker's new fingerprints, rebuilding each new state with one step."""
        visited = self.visited
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
                actions = actions_of[parent_fp] = self.menu(state, budget)
            action = actions[pointer & _INDEX_MASK]
            budget2 = next_budget(budget, action, self.config)
            out.append((self.step(state, action).state, budget2, fp2))

    def level(self, frontier: Frontier) -> tuple[Frontier, int, _Found | None]:
        """level expands one BFS level and returns the next frontier."""
        workers = self.config.workers if len(frontier) >= _MIN_PARALLEL else 1
        if workers == 1:
            stats = self.expand(frontier, self.visited, keep=True, tick=True)
            return stats.fresh, stats.edges, stats.found
        chunks = [frontier[k::workers] for k in range(workers)]
        context = multiprocessing.get_context("fork")
        children: list[tuple[multiprocessing.process.BaseProcess, Connection]] = []
        try:
            for k in range(1, workers):
                receive, send = context.Pipe(duplex=False)
                child = context.Process(target=self.worker, args=(send, chunks[k]), daemon=True)
                child.start()
                send.close()
                children.append((child, receive))
            stats = self.expand(chunks[0], self.visited, keep=True, tick=True)
            out = stats.fresh
            edges = stats.edges
            found = stats.found
            for k, (_, receive) in enumerate(children, start=1):
                if found is not None:
                    break
                child_edges, child_found, entries = receive.recv()
                edges += child_edges
                if child_found is not None:
                    found = _Found(*child_found)
                    break
                self.merge(chunks[k], entries, out)
            return out, edges, found
        finally:
            for process, pipe in children:
                pipe.close()
                if process.is_alive():
                    process.terminate()
                process.join()

    # --- counterexamples -----------------------------------------------------------------

    def path_to(self, fp: int) -> list[int]:
        indexes: list[int] = []
        pointer = self.visited[fp]
        while pointer != _ROOT:
            indexes.append(pointer & _INDEX_MASK)
            pointer = self.visited[pointer >> _INDEX_BITS]
        indexes.reverse()
        return indexes

    def counterexample(self, initial: ClusterState, found: _Found) -> str:
        steps: list[tuple[Action, ClusterState]] = []
        state = initial
        budget: Budget = ZERO_BUDGET
        for index in [*self.path_to(found.parent), found.index]:
            action = self.menu(state, budget)[index]
            state = self.step(state, action).state
            budget = next_budget(budget, action, self.config)
            steps.append((action, state))
        return properties.format_run(initial, steps, f"{found.name}: {found.detail}")

    # --- the whole search ----------------------------------------------------------------

    def run(self) -> ExploreResult:
        config = self.config
        initial = config.initial()
        budget0: Budget = ZERO_BUDGET
        root = self.root(initial, budget0)
        self.visited[root[2]] = _ROOT
        edges = 0
        complete = True
        found: _Found | None = None
        counterexample: str | None = None
        violation: str | None = None
        frontier: Frontier = [root]
        bad = properties.check_state(initial)
        if bad:
            violation = bad[0].invariant
            counterexample = properties.format_run(initial, [], str(bad[0]))
            frontier = []
        try:
            while frontier:
                if config.max_depth is not None and self.depth >= config.max_depth:
                    complete = False
                    break
                self.frontier_size = len(frontier)
                frontier, level_edges, found = self.level(frontier)
                edges += level_edges
                self.fingerprint.clear()
                self.menu.clear()
                if found is not None or frontier:
                    self.depth += 1
                if found is not None:
                    break
        except _StopError:
            complete = False
        if found is not None:
            violation = found.name
            counterexample = self.counterexample(initial, found)
        seconds = time.monotonic() - self.started
        distinct = len(self.visited)
        if config.progress:
            self.frontier_size = len(frontier)
            self.report(distinct)
        return ExploreResult(
            ok=violation is None,
            distinct_states=distinct,
            depth=self.depth,
            seconds=seconds,
            states_per_second=distinct / seconds if seconds > 0 else 0.0,
            counterexample=counterexample,
            violation=violation,
            edges=edges,
            complete=complete and violation is None,
            config=config,
            cpu_seconds=_cpu() - self.cpu_started,
        )
