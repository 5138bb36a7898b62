"""The ``raftwright`` command: run a node, a local cluster, the KV client, status.

Scripting conventions (scripts depend on them): ``kv get`` prints the value
alone on stdout and exits 0; a missing key exits 1 with a message on stderr;
no leader reachable or any other failure exits 2 or more with the reason on
stderr. Every command has ``--help``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from impl._cli_cluster import run_cluster
from impl._client import ClientError, KVClient, NoLeaderError, RaftClient
from impl._config import ConfigError, NodeConfig, parse_address, parse_peers

__all__ = ["EXIT_FAILURE", "EXIT_MISSING", "EXIT_NO_LEADER", "main"]

EXIT_MISSING = 1
EXIT_NO_LEADER = 2
EXIT_FAILURE = 3
DEFAULT_CLUSTER_ID = "raftwright"


def _addresses(text: str) -> list[str]:
    addresses = [a.strip() for a in text.split(",") if a.strip()]
    if not addresses:
        raise ConfigError("--cluster needs at least one HOST:PORT")
    for address in addresses:
        parse_address(address)
    return addresses


def _timeouts(text: str) -> tuple[int, int]:
    lo, _, hi = text.partition(",")
    try:
        return int(lo), int(hi or lo)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LOW,HIGH milliseconds, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="raftwright", description="raftwright: a Raft node, local cluster and KV client."
    )
    parser.add_argument(
        "--log-level", default="WARNING", help="logging level on stderr (default WARNING)"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    node = sub.add_parser("node", help="run one node in the foreground")
    node.add_argument("--id", required=True, help="this node's id (must be in --peers)")
    node.add_argument("--listen", required=True, metavar="HOST:PORT", help="address to bind")
    node.add_argument(
        "--peers",
        required=True,
        metavar="ID=HOST:PORT,...",
        help="all voters; this node may be listed or left out (then --listen is its address)",
    )
    node.add_argument("--data-dir", required=True, type=Path, help="where the log is stored")
    node.add_argument(
        "--trace-dir",
        type=Path,
        default=None,
        help="record every core step to DIR/node-<id>.ndjson (docs/trace-format.md)",
    )
    node.add_argument("--cluster-id", default=DEFAULT_CLUSTER_ID, help="cluster identity")
    node.add_argument(
        "--election-timeout-ms", type=_timeouts, default=(200, 400), metavar="LOW,HIGH"
    )
    node.add_argument("--heartbeat-ms", type=int, default=50)
    node.add_argument("--snapshot-every", type=int, default=10000, metavar="ENTRIES")
    node.add_argument(
        "--no-fsync", action="store_true", help="SQLite synchronous=OFF (benchmarks only)"
    )

    cluster = sub.add_parser("cluster", help="run a local cluster (one process per node)")
    cluster.add_argument("--nodes", type=int, required=True, help="number of nodes")
    cluster.add_argument("--base-port", type=int, default=7001, help="first port (default 7001)")
    cluster.add_argument("--data-dir", type=Path, default=Path("data"), help="parent data dir")
    cluster.add_argument("--host", default="127.0.0.1", help="host to bind (default 127.0.0.1)")
    cluster.add_argument("--cluster-id", default=DEFAULT_CLUSTER_ID, help="cluster identity")

    kv = sub.add_parser("kv", help="use the replicated key-value store")
    kv.add_argument("--cluster", required=True, metavar="HOST:PORT,...", help="node addresses")
    kv.add_argument("--timeout", type=float, default=10.0, help="overall deadline in seconds")
    kv_ops = kv.add_subparsers(dest="op", required=True, metavar="OP")
    put = kv_ops.add_parser("put", help="set KEY to VALUE")
    put.add_argument("key")
    put.add_argument("value")
    get = kv_ops.add_parser("get", help="print KEY's value (exit 1 if missing)")
    get.add_argument("key")
    delete = kv_ops.add_parser("delete", help="remove KEY")
    delete.add_argument("key")

    status = sub.add_parser("status", help="show every node's view of the cluster")
    status.add_argument("--cluster", required=True, metavar="HOST:PORT,...", help="node addresses")
    status.add_argument("--json", action="store_true", help="print JSON instead of a table")
    status.add_argument("--timeout", type=float, default=1.0, help="per-node timeout in seconds")
    return parser


# ---------------------------------------------------------------- node


def node_config_from_args(args: argparse.Namespace) -> NodeConfig:
    peers = parse_peers(args.peers)
    if args.id not in peers:
        peers[args.id] = args.listen
    return NodeConfig(
        node_id=args.id,
        cluster_id=args.cluster_id,
        listen=args.listen,
        peers=peers,
        data_dir=args.data_dir,
        election_timeout_ms=args.election_timeout_ms,
        heartbeat_ms=args.heartbeat_ms,
        snapshot_every=args.snapshot_every,
        fsync=not args.no_fsync,
        trace_dir=args.trace_dir,
    )


async def _run_node(config: NodeConfig) -> int:
    from impl._kv import KVStateMachine
    from impl._node import Node

    node = Node(config, KVStateMachine())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await node.start()
    print(
        f"raftwright node {config.node_id} listening on {config.listen}"
        f" (cluster {config.cluster_id!r}, {len(config.peers)} voters)",
        file=sys.stderr,
        flush=True,
    )
    try:
        while not stop.is_set() and node.running:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.5)
    finally:
        await node.stop()
    if node.failure is not None:
        print(f"raftwright node {config.node_id} failed: {node.failure}", file=sys.stderr)
        return EXIT_FAILURE
    return 0


# ---------------------------------------------------------------- kv


async def _run_kv(args: argparse.Namespace) -> int:
    async with KVClient(_addresses(args.cluster), deadline_s=args.timeout) as client:
        if args.op == "put":
            await client.put(args.key, args.value.encode())
            return 0
        if args.op == "get":
            value = await client.get(args.key)
            if value is None:
                print(f"key not found: {args.key}", file=sys.stderr)
                return EXIT_MISSING
            sys.stdout.buffer.write(value + b"\n")
            sys.stdout.flush()
            return 0
        if args.op == "delete":
            existed = await client.delete(args.key)
            if not existed:
                print(f"key not found (nothing deleted): {args.key}", file=sys.stderr)
            return 0
    raise AssertionError(f"unknown kv op {args.op!r}")


# ---------------------------------------------------------------- status


async def collect_status(addresses: list[str], timeout_s: float) -> list[dict[str, Any]]:
    """collect_status asks every node; the result is the "nodes" list of ``status --json``."""
    async with RaftClient(addresses) as client:
        reports = await client.status_all(timeout_s)
    members: dict[str, str] = {}
    for report in reports:
        if report.status is not None:
            members.update(report.status.members)
    by_address = {address: node_id for node_id, address in members.items()}
    nodes: list[dict[str, Any]] = []
    for report in reports:
        st = report.status
        if st is None:
            nodes.append(
                {
                    "id": by_address.get(report.address),
                    "address": report.address,
                    "role": "unreachable",
                    "term": None,
                    "leader": None,
                    "commit_index": None,
                    "applied_index": None,
                    "error": report.error,
                }
            )
            continue
        nodes.append(
            {
                "id": st.id,
                "address": report.address,
                "role": st.role,
                "term": st.term,
                "leader": st.leader or None,
                "commit_index": st.commit_index,
                "applied_index": st.applied_index,
                "log_size": st.log_size,
                "snapshot_index": st.snapshot_index,
                "peers": {
                    p.id: {"match_index": p.match_index, "next_index": p.next_index}
                    for p in st.peers
                },
            }
        )
    return nodes


def _table(nodes: list[dict[str, Any]]) -> str:
    cols = ("id", "address", "role", "term", "leader", "commit_index", "applied_index")
    heads = ("ID", "ADDRESS", "ROLE", "TERM", "LEADER", "COMMIT", "APPLIED")
    rows = [heads] + [tuple("-" if n[c] is None else str(n[c]) for c in cols) for n in nodes]
    widths = [max(len(r[i]) for r in rows) for i in range(len(cols))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


async def _run_status(args: argparse.Namespace) -> int:
    nodes = await collect_status(_addresses(args.cluster), args.timeout)
    if args.json:
        print(json.dumps({"nodes": nodes}, indent=2, sort_keys=True))
    else:
        print(_table(nodes))
    return 0 if any(n["role"] != "unreachable" for n in nodes) else EXIT_NO_LEADER


# ---------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    """main is the console-script entry point; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, str(args.log_level).upper(), logging.WARNING),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        match args.command:
            case "node":
                return asyncio.run(_run_node(node_config_from_args(args)))
            case "cluster":
                return run_cluster(
                    nodes=args.nodes,
                    base_port=args.base_port,
                    data_dir=args.data_dir,
                    host=args.host,
                    cluster_id=args.cluster_id,
                )
            case "kv":
                return asyncio.run(_run_kv(args))
            case "status":
                return asyncio.run(_run_status(args))
            case _:
                parser.error(f"unknown command {args.command!r}")
    except ConfigError as exc:
        print(f"raftwright: configuration error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except NoLeaderError as exc:
        print(f"raftwright: {exc}", file=sys.stderr)
        return EXIT_NO_LEADER
    except ClientError as exc:
        print(f"raftwright: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
