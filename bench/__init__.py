"""raftwright benchmarks side by side with PySyncObj (``make bench``, ``make bench-full``).

``python -m bench [--full]`` runs every section of issue 6 (write matrix, ReadIndex reads,
the gRPC client path, failover, recovery, checker rates, trace cost) and writes
``bench/results.json``, ``bench/results-detail.json``, ``bench/plots/*.png`` and
``BENCHMARKS.md``. ``run(mode)`` returns the flat figures and the raw samples;
``write_all`` renders them; ``Cluster`` is the 3-process cluster driver.
"""

from bench._cluster import Cluster
from bench._report import TARGETS, targets, write_all
from bench._run import FULL, QUICK, Mode, run

__all__ = ["FULL", "QUICK", "TARGETS", "Cluster", "Mode", "run", "targets", "write_all"]
