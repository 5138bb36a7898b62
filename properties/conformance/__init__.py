"""Trace conformance: replay recorded impl traces through the spec, plus cross-node checks.

``check_traces(paths)`` returns a ``ConformanceResult``; ``main(argv)`` is the command line
(``python -m properties.conformance`` and ``raftwright-check conformance``). The trace format
and the impl -> spec mapping, with every relaxation, are in docs/trace-format.md.
"""

from properties.conformance._check import ConformanceResult, check_traces
from properties.conformance._cli import main
from properties.conformance._reader import NodeTrace, Segment, TraceError, read_traces
from properties.conformance._replay import Divergence

__all__ = [
    "ConformanceResult",
    "Divergence",
    "NodeTrace",
    "Segment",
    "TraceError",
    "check_traces",
    "main",
    "read_traces",
]
