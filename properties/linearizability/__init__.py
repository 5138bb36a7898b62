"""Linearizability checking of key-value histories recorded from outside a cluster.

``check(operations)`` partitions the history per key (P-compositionality) and
runs a memoised Wing-Gong search on each; the verdict is linearizable, not
linearizable (with the minimal failing window, ``CheckResult.render``), or
unknown when the step or time bound ran out. Unknown-outcome writes may take
effect any time after their invocation, or never. ``History`` records
operations with their invocation and completion times.
"""

from properties.linearizability._check import (
    CheckResult,
    KeyResult,
    check,
    minimal_window,
    relevant,
    render_window,
)
from properties.linearizability._history import History, Operation, OpKind, Outcome, Output
from properties.linearizability._search import ANY, SearchResult, Verdict, search_key, step_model

__all__ = [
    "ANY",
    "CheckResult",
    "History",
    "KeyResult",
    "OpKind",
    "Operation",
    "Outcome",
    "Output",
    "SearchResult",
    "Verdict",
    "check",
    "minimal_window",
    "relevant",
    "render_window",
    "search_key",
    "step_model",
]
