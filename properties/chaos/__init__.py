"""Chaos testing of a real multi-process raftwright cluster, checked from outside.

``python -m properties.chaos`` (``make chaos``) starts ``raftwright node`` processes on
loopback with tracing on, wires every peer link through a fault-injecting TCP proxy, runs
concurrent ``KVClient``s that record every operation, and injects seeded faults (SIGKILL and
restart, SIGSTOP/SIGCONT, every node restarted at once, partitions, message loss). Then it
checks linearizability of the whole history, durability of every acknowledged write after a
full restart, and conformance of every trace. ``run_chaos(ChaosConfig(...))`` is the API.
"""

from properties.chaos._cli import PRESETS, final_line, main
from properties.chaos._faults import Fault, FaultKind, FaultRecord, Injector, schedule
from properties.chaos._procs import ChaosCluster, free_ports
from properties.chaos._proxy import LinkProxy
from properties.chaos._run import ChaosConfig, RunReport, run_chaos, summarise
from properties.chaos._workload import Workload, WorkloadConfig

__all__ = [
    "PRESETS",
    "ChaosCluster",
    "ChaosConfig",
    "Fault",
    "FaultKind",
    "FaultRecord",
    "Injector",
    "LinkProxy",
    "RunReport",
    "Workload",
    "WorkloadConfig",
    "final_line",
    "free_ports",
    "main",
    "run_chaos",
    "schedule",
    "summarise",
]
