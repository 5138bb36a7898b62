"""Latency summaries shared by the workers and the report.

Workers summarise in their own process (a 1,000-in-flight run yields far more samples than
are worth piping back), so percentiles and a bounded sample for the plots travel as JSON.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

__all__ = ["percentile", "summarise"]

_SAMPLE = 2000


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """percentile by nearest rank on an already sorted sequence (0 when empty)."""
    if not sorted_values:
        return 0.0
    rank = min(len(sorted_values) - 1, max(0, round(q / 100 * (len(sorted_values) - 1))))
    return float(sorted_values[rank])


def summarise(latencies_ms: list[float], ops: int, seconds: float, errors: int) -> dict[str, Any]:
    """summarise one load run: rate, percentiles and a reproducible sample for plots."""
    values = sorted(latencies_ms)
    rng = random.Random(len(values))
    sample = values if len(values) <= _SAMPLE else sorted(rng.sample(values, _SAMPLE))
    return {
        "ops": ops,
        "seconds": seconds,
        "ops_per_s": ops / seconds if seconds > 0 else 0.0,
        "errors": errors,
        "p50_ms": percentile(values, 50),
        "p90_ms": percentile(values, 90),
        "p99_ms": percentile(values, 99),
        "max_ms": values[-1] if values else 0.0,
        "sample_ms": [round(v, 4) for v in sample],
    }
