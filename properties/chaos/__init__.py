"""Chaos testing of a real multi-process raftwright cluster, checked from outside.

``python -m properties.chaos`` (``make chaos``) starts ``raftwright node`` processes on
loopback with tracing on, wires every peer link through a fault-injecting TCP proxy, runs
concurrent ``KVClient``s that record every operation, and injects seeded faults (SIGKILL and
restart, SIGSTOP/SIGCONT, every node restarted at once, partitions, message loss), and,
beside them, leadership transfers and membership changes (see _members). Then it
checks linearizability of the whole history, durability of every acknowledged write after a
full restart, and conformance of every trace. ``--seeded-bug`` runs the nodes with a
deliberate bug patched in (see _seeded_node), to show those checks fail when they should.
``run_chaos(ChaosConfig(...))`` is the API.
"""

from properties.chaos._cli import PRESETS, final_line, main
from properties.chaos._durability import DurabilityResult, check_durability
from properties.chaos._faults import Fault, FaultKind, FaultRecord, Injector, schedule
from properties.chaos._members import (
    MemberAction,
    MemberNemesis,
    MemberOp,
    MemberRecord,
    member_schedule,
)
from properties.chaos._procs import ChaosCluster, free_ports
from properties.chaos._proxy import Network, NodeProxy, socket_owner_inode
from properties.chaos._run import ChaosConfig, RunReport, run_chaos, summarise
from properties.chaos._seeded_node import BUGS, LOSE_ONE_IN, drops_write, launcher_prefix
from properties.chaos._workload import Workload, WorkloadConfig

__all__ = [
    "BUGS",
    "LOSE_ONE_IN",
    "PRESETS",
    "ChaosCluster",
    "ChaosConfig",
    "DurabilityResult",
    "Fault",
    "FaultKind",
    "FaultRecord",
    "Injector",
    "MemberAction",
    "MemberNemesis",
    "MemberOp",
    "MemberRecord",
    "Network",
    "NodeProxy",
    "RunReport",
    "Workload",
    "WorkloadConfig",
    "check_durability",
    "drops_write",
    "final_line",
    "free_ports",
    "launcher_prefix",
    "main",
    "member_schedule",
    "run_chaos",
    "schedule",
    "socket_owner_inode",
    "summarise",
]
