"""One raftwright node in its own process, driven over a pipe by the benchmark.

The process runs a real ``impl.Node`` (gRPC to its peers, SQLite on disk). When it leads,
the benchmark asks it over stdin to generate load *in this process*: ``concurrency`` tasks
each awaiting ``Node.propose`` (or ``Node.read``) in a loop, so every proposal is embedded
(no client RPC) while replication crosses real process boundaries. Its gRPC client service
is up too, for the client-path benchmark.

``python -m bench._rw_worker --id a --peers a=127.0.0.1:P,... --data-dir DIR [--no-fsync]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

from bench._statemachine import BenchStateMachine
from bench._stats import summarise
from impl import Node, NodeConfig, NodeError

__all__ = ["main"]

# A proposal still pending this long after the window closes is counted as hung: Node did
# not resolve it (see the leadership-change analysis). No per-call timer: at 1,000 in
# flight, wrapping each call in asyncio.wait_for cost the leader 10-15% of its CPU.
_GRACE_S = 5.0


async def _load(node: Node, req: dict[str, Any]) -> dict[str, Any]:
    concurrency = int(req["concurrency"])
    payload = b"x" * int(req["payload"])
    seconds = float(req["seconds"])
    warmup = float(req.get("warmup", 0.3))
    reads = req.get("kind") == "read"
    latencies: list[float] = []
    error_kinds: dict[str, int] = {}
    term_before = node.term
    counted = [0, 0, 0]  # ops measured, errors, ops including warm-up
    loop = asyncio.get_running_loop()
    start = loop.time()
    measure_from = start + warmup
    stop_at = measure_from + seconds

    async def one_client() -> None:
        clock = time.perf_counter
        while True:
            t0 = clock()
            now = loop.time()
            if now >= stop_at:
                return
            try:
                if reads:
                    await node.read(b"")
                else:
                    await node.propose(payload)
            except NodeError as exc:
                counted[1] += 1
                error_kinds[type(exc).__name__] = error_kinds.get(type(exc).__name__, 0) + 1
                await asyncio.sleep(0.01)
                continue
            counted[2] += 1
            if now >= measure_from:
                latencies.append((clock() - t0) * 1000)
                counted[0] += 1

    clients = [loop.create_task(one_client()) for _ in range(concurrency)]
    _, pending = await asyncio.wait(clients, timeout=warmup + seconds + _GRACE_S)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    if pending:
        counted[1] += len(pending)
        error_kinds["hung"] = len(pending)
    return {
        **summarise(latencies, counted[0], seconds, counted[1]),
        "ops_all": counted[2],
        "error_kinds": error_kinds,
        "term_changed": node.term != term_before,
    }


async def _probe(node: Node, req: dict[str, Any]) -> dict[str, Any]:
    """_probe writes as soon as this node leads; reports the commit time (CLOCK_MONOTONIC)."""
    dead = req.get("dead")
    deadline = time.monotonic() + float(req.get("timeout_s", 15))
    while time.monotonic() < deadline:
        if node.role.value == "leader":
            try:
                await asyncio.wait_for(node.propose(b"probe"), 1.0)
            except (NodeError, TimeoutError):
                continue
            return {"ok": True, "t": time.monotonic(), "id": node.config.node_id}
        leader = node.leader_id
        if leader is not None and leader not in (dead, node.config.node_id):
            return {"ok": False, "leader": leader}
        await asyncio.sleep(0.002)
    return {"ok": False, "leader": None}


def _status(node: Node) -> dict[str, Any]:
    st = node.status()
    return {
        "id": st.id,
        "role": st.role,
        "term": st.term,
        "leader": st.leader,
        "commit": st.commit_index,
        "applied": st.applied_index,
        "port": node.port,
        "cpu_s": time.process_time(),
    }


async def _serve(node: Node) -> None:
    loop = asyncio.get_running_loop()
    lines: asyncio.Queue[str | None] = asyncio.Queue()

    def pump() -> None:
        for line in sys.stdin:
            loop.call_soon_threadsafe(lines.put_nowait, line)
        loop.call_soon_threadsafe(lines.put_nowait, None)

    threading.Thread(target=pump, daemon=True).start()
    print(json.dumps({"ready": True, **_status(node)}), flush=True)
    while True:
        line = await lines.get()
        if line is None:
            return
        if not line.strip():
            continue
        req = json.loads(line)
        op = req.get("op")
        answer: dict[str, Any]
        try:
            if op == "quit":
                return
            if op == "status":
                answer = _status(node)
            elif op == "load":
                answer = await _load(node, req)
            elif op == "probe":
                answer = await _probe(node, req)
            else:
                answer = {"error": f"unknown op {op!r}"}
        except Exception as exc:
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        print(json.dumps(answer), flush=True)


async def _main(args: argparse.Namespace) -> None:
    peers = dict(item.split("=", 1) for item in args.peers.split(","))
    config = NodeConfig(
        node_id=args.id,
        cluster_id="bench",
        listen=peers[args.id],
        peers=peers,
        data_dir=Path(args.data_dir),
        fsync=not args.no_fsync,
        trace_dir=Path(args.trace_dir) if args.trace_dir else None,
        snapshot_every=args.snapshot_every,
    )
    node = Node(config, BenchStateMachine())
    await node.start()
    try:
        await _serve(node)
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(node.stop(), 10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--id", required=True)
    parser.add_argument("--peers", required=True)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--no-fsync", action="store_true")
    parser.add_argument("--trace-dir", default="")
    parser.add_argument("--snapshot-every", type=int, default=10000)
    asyncio.run(_main(parser.parse_args()))


if __name__ == "__main__":
    main()
