"""The Hypothesis engine: random, shrinking exploration of the spec's cluster model.

`ClusterMachine` is the rule-based state machine (pytest: `ClusterMachine.TestCase`);
`run_stateful` runs it under a settings profile ("ci" or "deep") and returns a
`StatefulResult` with the verdict, the shrunk counterexample table, throughput and coverage.
`python -m properties.stateful --profile ci` is the command-line front end.
"""

from properties.stateful._coverage import COVERAGE_KEYS, Coverage, RunFlags
from properties.stateful._machine import MAX_IN_FLIGHT, MAX_NODES, ClusterMachine, StepFn
from properties.stateful._profiles import PROFILES, profile_settings
from properties.stateful._runner import StatefulResult, run_stateful

__all__ = [
    "COVERAGE_KEYS",
    "MAX_IN_FLIGHT",
    "MAX_NODES",
    "PROFILES",
    "ClusterMachine",
    "Coverage",
    "RunFlags",
    "StatefulResult",
    "StepFn",
    "profile_settings",
    "run_stateful",
]
