"""The fast search: the same BFS as `_search`, over the interned int states of `_engine`.

Same levels, same frontier order, same action indexes, same fingerprints, same checks on
every state and edge: only the representation differs, so the distinct states, edges and
counterexamples are those of the plain search (which `tests/properties/test_explore_engine.py`
compares). It applies when the spec's cluster composition and the invariant entry points are
the originals and no `step_fn` is given; a mutant that patches node handlers (the catalogue's
kind) still runs here, because the node step is looked up when the search starts.

Trust but verify: the first `config.cross_check` edges of every run (and of every forked
worker) are recomputed with `spec.cluster_step` on materialised states, and the offered
actions, successor, bound verdict and fingerprint must all agree, or the run stops with an
error. A counterexample is replayed through `spec.cluster_step` and must show the violation.
"""

from __future__ import annotations

import properties
import spec
import spec._cluster as spec_cluster
from properties import _invariants
from properties.explore._actions import ZERO_BUDGET, Budget, within_bounds
from properties.explore._checks import Checks
from properties.explore._config import ExploreConfig, ExploreResult
from properties.explore._engine import DELIVER, Engine, IntAction, IntState, NodeStepFn
from properties.explore._search import (
    _INDEX_BITS,
    _INDEX_MASK,
    _TICK_EVERY,
    Frontier,
    StepFn,
    _Found,
    _Search,
    _Stats,
)
from spec import Action, ClusterState

__all__ = ["explore", "fast_path_applies"]

_CLUSTER_STEP = spec_cluster.cluster_step
_COMPOSITION = (
    spec_cluster._apply_node_step,
    spec_cluster._record_reads,
    spec_cluster._add,
    spec_cluster._remove,
)


def fast_path_applies(config: ExploreConfig, step_fn: StepFn | None) -> bool:
    """fast_path_applies says whether `_engine`'s composition is the spec's right now."""
    composition = (
        spec_cluster._apply_node_step,
        spec_cluster._record_reads,
        spec_cluster._add,
        spec_cluster._remove,
    )
    return (
        config.fast
        and step_fn is None
        and spec.cluster_step is _CLUSTER_STEP
        and spec_cluster.cluster_step is _CLUSTER_STEP
        and all(a is b for a, b in zip(composition, _COMPOSITION, strict=True))
        and properties.check_state is _invariants.check_state
        and properties.check_transition is _invariants.check_transition
    )


class CrossCheckError(RuntimeError):
    """CrossCheckError: the fast engine and `spec.cluster_step` disagree (a bug in the engine)."""


class _FastSearch(_Search):
    """_FastSearch overrides how a level is expanded and merged; the rest is `_Search`."""

    def __init__(self, config: ExploreConfig) -> None:
        super().__init__(config, spec.cluster_step)
        # The node step cluster_step calls, as it is now: a mutant's, when one is patched in.
        node_step: NodeStepFn = vars(spec_cluster)["step"]
        self.engine = Engine(config, node_step)
        self.checks = Checks(self.engine)
        self.cross_checks = config.cross_check
        self._charged: dict[tuple[Budget, int], Budget] = {}

    def root(self, initial: ClusterState, budget: Budget) -> tuple[IntState, Budget, int]:
        state = self.engine.state(initial)
        fp = self.engine.fingerprint(state, budget)
        if self.cross_checks > 0 and fp != self.fingerprint(initial, budget):
            raise CrossCheckError("the initial fingerprints differ")
        return (state, budget, fp)

    def charge(self, budget: Budget, slot: int) -> Budget:
        key = (budget, slot)
        found = self._charged.get(key)
        if found is None:
            spent = list(budget)
            spent[slot] += 1
            found = self._charged[key] = (
                spent[0],
                spent[1],
                spent[2],
                spent[3],
                spent[4],
                spent[5],
                spent[6],
                spent[7],
            )
        return found

    def expand(self, chunk: Frontier, fresh: dict[int, int], keep: bool, tick: bool) -> _Stats:
        stats = _Stats()
        known = self.visited
        same = known is fresh
        engine = self.engine
        actions_of = engine.actions
        successor = engine.successor
        node_ok = engine.node_ok
        max_messages = self.config.max_messages
        layout_of = engine.layout
        fingerprint_in = engine.fingerprint_in
        check_state = self.checks.state
        check_transition = self.checks.transition
        charge = self.charge
        whole_edge = self.checks.has_whole_edge
        seen: set[tuple[IntState, Budget]] = set()
        for number, (state, budget, fp) in enumerate(chunk):
            if tick and number % _TICK_EVERY == 0:
                self.tick(len(fresh))
            actions = actions_of(state, budget)
            if self.cross_checks > 0:
                self.cross_check(state, budget, actions)
            nodes, disks, _, crashed, _, _ = state
            layout = layout_of(state)
            for index, action in enumerate(actions):
                moved = successor(state, action, True)
                if moved is None:  # refused, or outside the bounds
                    continue
                new, changed, event = moved
                # Engine.within_bounds, inlined: only node `changed` can have left the bounds.
                if len(new[2]) > max_messages or (changed >= 0 and not node_ok[new[0][changed]]):
                    continue
                stats.edges += 1
                # No node stepped and nothing delivered: only whole-edge claims can object.
                if changed >= 0 or action[0] == DELIVER or whole_edge:
                    broken = check_transition(state, action, new, changed, event)
                    if broken:
                        stats.found = _Found(fp, index, broken[0].invariant, broken[0].detail)
                        return stats
                budget2 = budget if action[3] < 0 else charge(budget, action[3])
                concrete = (new, budget2)
                if concrete in seen:  # reached already in this level: a duplicate for sure
                    continue
                seen.add(concrete)
                if new[0] is nodes and new[1] is disks and new[3] == crashed:
                    fp2 = fingerprint_in(layout, new, budget2)
                else:
                    fp2 = fingerprint_in(layout_of(new), new, budget2)
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

    def cross_check(self, state: IntState, budget: Budget, actions: list[IntAction]) -> None:
        """cross_check recomputes one state's edges with the spec and compares everything."""
        engine = self.engine
        cluster = engine.materialise(state)
        offered = self.menu(cluster, budget)
        if offered != [action[4] for action in actions]:
            raise CrossCheckError(f"offered actions differ in {cluster}")
        for action in actions:
            self.cross_checks -= 1
            result = self.step(cluster, action[4])
            moved = engine.successor(state, action)
            if (result.rejected is None) != (moved is not None):
                raise CrossCheckError(f"{action[4]} refused by only one side in {cluster}")
            if moved is None:
                continue
            new, changed, _ = moved
            if engine.materialise(new) != result.state:
                raise CrossCheckError(f"{action[4]} leads to different states from {cluster}")
            inside = within_bounds(result.state, self.config)
            if engine.within_bounds(new, changed) != inside:
                raise CrossCheckError(f"bounds disagree after {action[4]} from {cluster}")
            budget2 = budget if action[3] < 0 else self.charge(budget, action[3])
            if inside and engine.fingerprint(new, budget2) != self.fingerprint(
                result.state, budget2
            ):
                raise CrossCheckError(f"fingerprints differ after {action[4]} from {cluster}")

    def merge(self, chunk: Frontier, entries: list[tuple[int, int]], out: Frontier) -> None:
        visited = self.visited
        engine = self.engine
        parents = {fp: (state, budget) for state, budget, fp in chunk}
        actions_of: dict[int, list[IntAction]] = {}
        for fp2, pointer in entries:
            if fp2 in visited:
                continue
            visited[fp2] = pointer
            parent_fp = pointer >> _INDEX_BITS
            state, budget = parents[parent_fp]
            actions = actions_of.get(parent_fp)
            if actions is None:
                actions = actions_of[parent_fp] = engine.actions(state, budget)
            action = actions[pointer & _INDEX_MASK]
            moved = engine.successor(state, action)
            assert moved is not None  # the worker found this edge enabled
            budget2 = budget if action[3] < 0 else self.charge(budget, action[3])
            out.append((moved[0], budget2, fp2))

    def counterexample(self, initial: ClusterState, found: _Found) -> str:
        """counterexample replays the run through the spec and checks that it still fails."""
        steps: list[tuple[Action, ClusterState]] = []
        state = initial
        budget: Budget = ZERO_BUDGET
        engine_state = self.engine.state(initial)
        for index in [*self.path_to(found.parent), found.index]:
            action = self.menu(state, budget)[index]
            int_action = self.engine.actions(engine_state, budget)[index]
            if int_action[4] != action:
                raise CrossCheckError(f"replay offers {action}, the engine {int_action[4]}")
            moved = self.engine.successor(engine_state, int_action)
            assert moved is not None
            engine_state = moved[0]
            before = state
            state = self.step(state, action).state
            budget = budget if int_action[3] < 0 else self.charge(budget, int_action[3])
            steps.append((action, state))
        names = {v.invariant for v in properties.check_state(state)}
        if steps:
            names |= {v.invariant for v in properties.check_transition(before, action, state)}
        if found.name not in names:
            raise CrossCheckError(f"the replayed run does not violate {found.name}")
        return properties.format_run(initial, steps, f"{found.name}: {found.detail}")


def explore(config: ExploreConfig, step_fn: StepFn | None = None) -> ExploreResult:
    """explore checks every invariant on every state reachable within `config`'s bounds.

    `step_fn` replaces `spec.cluster_step` (for seeded bugs); by default the step is looked
    up on the `spec` package when the search starts, so `unittest.mock.patch` of spec's
    attributes is honoured, including by forked workers (they fork after the patch). The
    interned engine runs whenever it composes steps exactly as the spec does
    (`fast_path_applies`); otherwise, or with `config.fast` off, the plain search does.
    """
    if fast_path_applies(config, step_fn):
        return _FastSearch(config).run()
    step: StepFn = step_fn if step_fn is not None else spec.cluster_step
    return _Search(config, step).run()
