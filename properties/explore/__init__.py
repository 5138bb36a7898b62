"""The exhaustive bounded explorer: TLC-style breadth-first search over the spec's cluster model.

`explore(config)` visits every state reachable within the bounds (up to node relabelling),
checks `properties.check_state` on each and `properties.check_transition` on every edge, and
returns the shortest counterexample on a violation. `python -m properties.explore --config ci`
is the command-line front end.

Two searches share one BFS (`_search`): the plain one steps `ClusterState`s through
`spec.cluster_step`; the fast one (`_fast`, the default whenever it applies) steps interned
int states through `_engine`, with memoised node steps (`spec.step` per (node state, input))
and memoised invariant verdicts (`_checks`). Both visit the same states and edges and print
the same counterexamples; `ExploreConfig(fast=False)` forces the plain one.
"""

from properties.explore._actions import (
    ZERO_BUDGET,
    Budget,
    Menu,
    charge_slot,
    enumerate_actions,
    next_budget,
    splits,
    within_bounds,
)
from properties.explore._canon import Fingerprinter, fingerprint, relabel
from properties.explore._cli import build_parser, main
from properties.explore._config import CONFIGS, ExploreConfig, ExploreResult, config_by_name
from properties.explore._fast import explore, fast_path_applies
from properties.explore._search import StepFn

__all__ = [
    "CONFIGS",
    "ZERO_BUDGET",
    "Budget",
    "ExploreConfig",
    "ExploreResult",
    "Fingerprinter",
    "Menu",
    "StepFn",
    "build_parser",
    "charge_slot",
    "config_by_name",
    "enumerate_actions",
    "explore",
    "fast_path_applies",
    "fingerprint",
    "main",
    "next_budget",
    "relabel",
    "splits",
    "within_bounds",
]
