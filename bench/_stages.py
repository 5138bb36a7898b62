"""Where the time of one write goes, stage by stage (run by hand; not part of ``make bench``).

``python -m bench._stages [--writes 300] [--no-fsync]``: three ``impl.Node`` in ONE
process and event loop on 127.0.0.1 (so the nodes also share one core: the figures
show the order and relative size of the stages, not multi-process latency), one
write in flight at a time. Hooks on the node record, per write at index i:

- ``wake``: propose called -> the driver's Ready carrying entry i starts;
- ``leader_persist``: that Ready starts -> the leader's own save of i returns;
- ``to_follower``: that Ready starts -> the first follower receives the append;
- ``follower_persist``: follower receives -> its save of i returns;
- ``reply``: that save returns -> the leader receives the first ack of i;
- ``commit_ready``: max(own persist, first ack) -> the Ready committing i starts;
- ``resolve``: that Ready starts -> propose returns;
- ``total``: propose called -> propose returns.

Prints the median and p90 of each in ms, with the load average.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from impl import KVStateMachine, Node, NodeConfig
from impl import _node as node_module
from impl._core import AppendRequest, AppendResponse, Message
from impl._kv import encode_put
from properties.chaos import free_ports

__all__ = ["main"]


async def _run(writes: int, fsync: bool, root: Path) -> dict[str, Any]:
    clock = time.perf_counter
    marks: dict[str, dict[int, float]] = defaultdict(dict)
    ports = free_ports(3)
    peers = {f"n{i + 1}": f"127.0.0.1:{p}" for i, p in enumerate(ports)}
    nodes: dict[str, Node] = {}
    leader_box: list[str] = []
    inner_persist = node_module._persist

    def persist(storage: Any, hard: Any, entries: Any, snapshot: Any) -> None:
        inner_persist(storage, hard, entries, snapshot)
        if entries:
            who = "leader" if getattr(storage, "_bench_leader", False) else "follower"
            marks[f"{who}_persisted"].setdefault(entries[-1].index, clock())

    node_module._persist = persist  # type: ignore[assignment]
    for node_id, address in peers.items():
        cfg = NodeConfig(
            node_id=node_id,
            cluster_id="stages",
            listen=address,
            peers=peers,
            data_dir=root / node_id,
            fsync=fsync,
        )
        nodes[node_id] = Node(cfg, KVStateMachine())
    try:
        for n in nodes.values():
            await n.start()
        while True:
            leaders = [i for i, n in nodes.items() if n.role.value == "leader"]
            if leaders:
                break
            await asyncio.sleep(0.05)
        leader_id = leaders[0]
        leader_box.append(leader_id)
        leader = nodes[leader_id]
        leader._storage._bench_leader = True  # type: ignore[union-attr]
        inner_ready = leader._handle_ready

        async def handle_ready(core: Any, ready: Any, waiters: Any) -> None:
            now = clock()
            for e in ready.entries:
                marks["ready"].setdefault(e.index, now)
            for e in ready.committed:
                marks["commit_ready"].setdefault(e.index, now)
            await inner_ready(core, ready, waiters)

        leader._handle_ready = handle_ready  # type: ignore[method-assign]
        inner_reply = leader._on_peer_reply

        def on_reply(msg: Message) -> None:
            if isinstance(msg, AppendResponse) and msg.success:
                marks["acked"].setdefault(msg.match_index, clock())
            inner_reply(msg)

        assert leader._senders is not None
        leader._senders._on_reply = on_reply
        for st in leader._senders._streams.values():
            st._on_reply = on_reply
        for node_id, n in nodes.items():
            if node_id == leader_id:
                continue
            inner_deliver = n.deliver_nowait

            def deliver(msg: Message, _inner: Any = inner_deliver) -> Any:
                if isinstance(msg, AppendRequest) and msg.entries:
                    marks["received"].setdefault(msg.entries[-1].index, clock())
                return _inner(msg)

            n.deliver_nowait = deliver  # type: ignore[method-assign]
        for i in range(writes):
            t0 = clock()
            index = leader._core.last_index + 1  # type: ignore[union-attr]
            marks["proposed"][index] = t0
            await leader.propose(encode_put(f"k{i}", b"v", "", 0))
            marks["done"][index] = clock()
    finally:
        node_module._persist = inner_persist
        for n in nodes.values():
            await n.stop()
    stages: dict[str, list[float]] = defaultdict(list)
    m = marks
    for index, t0 in m["proposed"].items():
        try:
            ready, lp = m["ready"][index], m["leader_persisted"][index]
            recv, fp = m["received"][index], m["follower_persisted"][index]
            ack, cr, done = m["acked"][index], m["commit_ready"][index], m["done"][index]
        except KeyError:
            continue
        for name, value in (
            ("wake", ready - t0),
            ("leader_persist", lp - ready),
            ("to_follower", recv - ready),
            ("follower_persist", fp - recv),
            ("reply", ack - fp),
            ("commit_ready", cr - max(lp, ack)),
            ("resolve", done - cr),
            ("total", done - t0),
        ):
            stages[name].append(value * 1000)
    out: dict[str, Any] = {"writes": len(stages["total"]), "fsync": fsync}
    for name, values in stages.items():
        q = statistics.quantiles(values, n=10)
        out[name] = {"p50_ms": round(statistics.median(values), 3), "p90_ms": round(q[8], 3)}
    out["load"] = os.getloadavg()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench._stages", description=__doc__)
    parser.add_argument("--writes", type=int, default=300)
    parser.add_argument("--no-fsync", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="raftwright-stages-") as tmp:
        result = asyncio.run(_run(args.writes, not args.no_fsync, Path(tmp)))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
