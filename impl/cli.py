"""The ``raftwright`` command: run a node, a local cluster, the KV client, status.

Scripting conventions (scripts depend on them): ``kv get`` prints the value
alone on stdout and exits 0; a missing key exits 1 with a message on stderr;
no leader reachable exits 2, a configuration error (bad flag value, config
file key, certificate file) exits 2 naming the setting, and any other
failure exits 3, always with the reason on stderr. ``transfer`` exits 0 once
the target leads and 1 when it did not within --timeout; ``member add --wait``
exits 1 when the new member was added but is not a voter within --wait.
``member`` refusals (already a member, not a member, a change the rules block
until the deadline) exit 3 with the node's reason. Every command has ``--help``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
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
from impl._config_file import NodeSettings, load_config_file, resolve_settings
from impl._logging import LOG_FORMATS, NativeStderr, configure_logging
from impl._security import TlsConfig, load_tls

__all__ = [
    "EXIT_CONFIG",
    "EXIT_FAILURE",
    "EXIT_MISSING",
    "EXIT_NO_LEADER",
    "EXIT_TIMEOUT",
    "main",
]

EXIT_MISSING = 1
EXIT_TIMEOUT = 1
EXIT_NO_LEADER = 2
EXIT_CONFIG = 2
EXIT_FAILURE = 3
DEFAULT_CLUSTER_ID = "raftwright"

log = logging.getLogger("raftwright.cli")


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

    node = sub.add_parser(
        "node",
        help="run one node in the foreground",
        description="Run one node. Every option can also come from --config FILE.toml;"
        " flags given here override the file.",
    )
    node.add_argument(
        "--config", type=Path, default=None, metavar="FILE.toml", help="node config file"
    )
    node.add_argument("--id", default=None, help="this node's id (must be in --peers)")
    node.add_argument(
        "--listen",
        default=None,
        metavar="HOST:PORT",
        help="address to bind (default: this node's address in --peers)",
    )
    node.add_argument(
        "--peers",
        type=parse_peers,
        default=None,
        metavar="ID=HOST:PORT,...",
        help="all voters; this node may be listed or left out (then --listen is its address)",
    )
    node.add_argument("--data-dir", type=Path, default=None, help="where the log is stored")
    node.add_argument(
        "--trace-dir",
        type=Path,
        default=None,
        help="record every core step to DIR/node-<id>.ndjson (docs/trace-format.md)",
    )
    node.add_argument(
        "--cluster-id", default=None, help=f"cluster identity (default {DEFAULT_CLUSTER_ID!r})"
    )
    node.add_argument(
        "--election-timeout-ms",
        type=_timeouts,
        default=None,
        metavar="LOW,HIGH",
        help="election timeout range (default 200,400)",
    )
    node.add_argument("--heartbeat-ms", type=int, default=None, help="default 50")
    node.add_argument(
        "--snapshot-every", type=int, default=None, metavar="ENTRIES", help="default 10000"
    )
    node.add_argument(
        "--no-fsync", action="store_true", help="SQLite synchronous=OFF (benchmarks only)"
    )
    node.add_argument(
        "--tls-cert", type=Path, default=None, metavar="PEM", help="this node's certificate"
    )
    node.add_argument("--tls-key", type=Path, default=None, metavar="PEM", help="its key")
    node.add_argument(
        "--tls-ca",
        type=Path,
        default=None,
        metavar="PEM",
        help="CA for mutual TLS: peers and clients must present a certificate it signed",
    )
    node.add_argument(
        "--tls-no-verify-peer-id",
        action="store_true",
        help="under mutual TLS, accept a peer whose certificate does not name the node id"
        " it claims (default: checked; config key tls.verify_peer_id)",
    )
    node.add_argument(
        "--metrics-listen",
        default=None,
        metavar="HOST:PORT",
        help="serve Prometheus metrics at http://HOST:PORT/metrics",
    )
    node.add_argument(
        "--log-format", choices=LOG_FORMATS, default=None, help="text (default) or json lines"
    )
    node.add_argument(
        "--join",
        action="store_true",
        default=None,
        help="start with no config and wait to be added (raftwright member add);"
        " --peers may be left out",
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
    _client_tls_flags(kv)
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
    _client_tls_flags(status)

    transfer = sub.add_parser(
        "transfer",
        help="hand leadership to another node",
        description="Ask the leader to hand leadership to --to (Raft thesis 3.10) and wait"
        " until it leads: exit 0 when it does, 1 when it did not within --timeout.",
    )
    transfer.add_argument(
        "--cluster", required=True, metavar="HOST:PORT,...", help="node addresses"
    )
    transfer.add_argument("--to", required=True, metavar="ID", help="the node to lead next")
    transfer.add_argument(
        "--timeout", type=float, default=10.0, help="overall deadline in seconds (default 10)"
    )
    _client_tls_flags(transfer)
    _member_parser(sub)
    return parser


def _member_parser(sub: Any) -> None:
    member = sub.add_parser(
        "member",
        help="add, remove or list cluster members",
        description="Change the cluster one server at a time (Raft thesis 4.1, 4.2): a new"
        " member joins as a learner and becomes a voter once it has caught up.",
    )
    ops = member.add_subparsers(dest="op", required=True, metavar="OP")
    add = ops.add_parser("add", help="add ID=HOST:PORT (start it first with node --join)")
    add.add_argument("member", metavar="ID=HOST:PORT", help="the new member and its address")
    add.add_argument(
        "--wait",
        type=float,
        default=None,
        metavar="SECONDS",
        help="then wait until it is a voter (exit 1 if it is not within SECONDS)",
    )
    remove = ops.add_parser("remove", help="remove a voter or learner (the leader too)")
    remove.add_argument("id", metavar="ID")
    listing = ops.add_parser("list", help="show the members: id, address, voter/learner, match")
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    for p in (add, remove, listing):
        p.add_argument("--cluster", required=True, metavar="HOST:PORT,...", help="node addresses")
        p.add_argument(
            "--timeout", type=float, default=10.0, help="overall deadline in seconds (default 10)"
        )
        _client_tls_flags(p)


def _client_tls_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tls-ca", type=Path, default=None, metavar="PEM", help="verify the nodes with this CA"
    )
    parser.add_argument(
        "--tls-cert",
        type=Path,
        default=None,
        metavar="PEM",
        help="client certificate (clusters with mutual TLS)",
    )
    parser.add_argument("--tls-key", type=Path, default=None, metavar="PEM", help="its key")


def _tls_from_args(args: argparse.Namespace) -> TlsConfig | None:
    if args.tls_ca is None and args.tls_cert is None and args.tls_key is None:
        return None
    return TlsConfig(cert=args.tls_cert, key=args.tls_key, ca=args.tls_ca)


# ---------------------------------------------------------------- node


def node_settings_from_args(args: argparse.Namespace) -> NodeSettings:
    """node_settings_from_args merges defaults, the --config file and the flags."""
    file_values = load_config_file(args.config) if args.config is not None else {}
    tls_flags = (args.tls_cert, args.tls_key, args.tls_ca)
    tls: TlsConfig | None = None
    if any(v is not None for v in tls_flags):
        base = file_values.get("tls")
        cert = args.tls_cert or (base.cert if base is not None else None)
        key = args.tls_key or (base.key if base is not None else None)
        ca = args.tls_ca or (base.ca if base is not None else None)
        if cert is None or key is None:
            raise ConfigError("--tls-cert and --tls-key are needed together (--tls-ca adds mTLS)")
        verify = base.verify_peer_id if base is not None else None
        tls = TlsConfig(cert=cert, key=key, ca=ca, verify_peer_id=verify)
    if args.tls_no_verify_peer_id:
        tls = tls or file_values.get("tls")
        if tls is None:
            raise ConfigError(
                "--tls-no-verify-peer-id needs TLS (--tls-cert and --tls-key, or a [tls] table)"
            )
        tls = dataclasses.replace(tls, verify_peer_id=False)
    flags = {
        "id": args.id,
        "listen": args.listen,
        "peers": args.peers,
        "data_dir": args.data_dir,
        "trace_dir": args.trace_dir,
        "cluster_id": args.cluster_id,
        "election_timeout_ms": args.election_timeout_ms,
        "heartbeat_ms": args.heartbeat_ms,
        "snapshot_every": args.snapshot_every,
        "fsync": False if args.no_fsync else None,
        "metrics_listen": args.metrics_listen,
        "log_format": args.log_format,
        "tls": tls,
        "join": args.join,
    }
    return resolve_settings(file_values, flags)


def node_config_from_args(args: argparse.Namespace) -> NodeConfig:
    """node_config_from_args is the NodeConfig part of node_settings_from_args."""
    return node_settings_from_args(args).config


async def _run_node(config: NodeConfig) -> int:
    from impl._kv import KVStateMachine
    from impl._metrics import MetricsServer, metrics_for
    from impl._node import Node
    from impl._storage import StorageError

    if config.tls is not None:
        load_tls(config.tls)  # bad certificate files: fail before the store is opened
    node = Node(config, KVStateMachine())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    metrics: MetricsServer | None = None
    if config.metrics_listen is not None:
        node_metrics = metrics_for(node)
        metrics = MetricsServer(config.metrics_listen, lambda: node_metrics.render(node.status()))
    try:
        if metrics is not None:
            await metrics.start()  # first: a taken port fails before the node joins
        await node.start()
    except (OSError, RuntimeError, StorageError) as exc:  # grpc: RuntimeError on bind
        if metrics is not None:
            await metrics.stop()
        log.error("raftwright node %s cannot start: %s", config.node_id, exc)
        return EXIT_FAILURE
    try:
        tls = "off" if config.tls is None else ("mutual" if config.tls.ca else "on")
        if config.tls is not None and config.tls.ca and not config.tls.verifies_peer_id:
            tls += ", peer id not checked"
        log.info(
            "raftwright node %s listening on %s (cluster %r, %d voters, tls %s%s)",
            config.node_id,
            config.listen,
            config.cluster_id,
            len(node.status().voters),
            tls,
            f", metrics on {config.metrics_listen}" if metrics is not None else "",
        )
        while not stop.is_set() and node.running:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.5)
    finally:
        if metrics is not None:
            await metrics.stop()
        await node.stop()
    if node.failure is not None:
        log.error("raftwright node %s failed: %s", config.node_id, node.failure)
        return EXIT_FAILURE
    log.info("raftwright node %s stopped", config.node_id)
    return 0


# ---------------------------------------------------------------- kv


async def _run_kv(args: argparse.Namespace) -> int:
    async with KVClient(
        _addresses(args.cluster), deadline_s=args.timeout, tls=_tls_from_args(args)
    ) as client:
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


async def collect_status(
    addresses: list[str], timeout_s: float, tls: TlsConfig | None = None
) -> list[dict[str, Any]]:
    """collect_status asks every node; the result is the "nodes" list of ``status --json``."""
    async with RaftClient(addresses, tls=tls) as client:
        reports = await client.status_all(timeout_s)
    members: dict[str, str] = {}
    for report in reports:
        if report.status is not None:
            members.update(report.status.members)
            members.update(report.status.learners)
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
    nodes = await collect_status(_addresses(args.cluster), args.timeout, _tls_from_args(args))
    if args.json:
        print(json.dumps({"nodes": nodes}, indent=2, sort_keys=True))
    else:
        print(_table(nodes))
    return 0 if any(n["role"] != "unreachable" for n in nodes) else EXIT_NO_LEADER


# ---------------------------------------------------------------- transfer


async def _run_transfer(args: argparse.Namespace) -> int:
    """_run_transfer asks the leader, then polls Status until --to leads (thesis 3.10)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + args.timeout
    target: str = args.to
    async with RaftClient(
        _addresses(args.cluster), deadline_s=args.timeout, tls=_tls_from_args(args)
    ) as client:
        reply = await client.transfer_leadership(target)
        if reply.leader == target:
            print(f"{target} is already the leader (term {reply.term})")
            return 0
        last = f"{reply.leader} accepted the transfer in term {reply.term}"
        asked_at = loop.time()
        while loop.time() < deadline:
            reports = await client.status_all(min(1.0, max(0.05, deadline - loop.time())))
            for report in reports:
                st = report.status
                if st is not None and st.role == "leader":
                    if st.id == target and st.term > reply.term:
                        print(f"{target} is the leader (term {st.term})")
                        return 0
                    last = f"{st.id} leads in term {st.term}"
            if loop.time() - asked_at > 1.0 and loop.time() < deadline - 0.1:
                # The leader drops a transfer that did not finish within an election
                # timeout (the target lagged, or leadership moved): ask again.
                asked_at = loop.time()
                with contextlib.suppress(ClientError):
                    reply = await client.transfer_leadership(target)
                    if reply.leader == target:
                        print(f"{target} is the leader (term {reply.term})")
                        return 0
            await asyncio.sleep(0.05)
    print(
        f"raftwright transfer: {target} did not become leader within {args.timeout:.1f}s"
        f" (last seen: {last})",
        file=sys.stderr,
    )
    return EXIT_TIMEOUT


# ---------------------------------------------------------------- member


def _members_json(resp: Any) -> dict[str, Any]:
    return {
        "members": [
            {
                "id": m.member.id,
                "address": m.member.address,
                "voter": m.voter,
                "match_index": m.match_index,
            }
            for m in resp.members
        ],
        "config_index": resp.config_index,
        "committed": resp.committed,
        "leader": resp.leader or None,
    }


def _members_table(view: dict[str, Any]) -> str:
    heads = ("ID", "ADDRESS", "ROLE", "MATCH")
    rows = [heads] + [
        (
            m["id"],
            m["address"],
            "voter" if m["voter"] else "learner",
            str(m["match_index"]) if view["leader"] else "-",
        )
        for m in view["members"]
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(heads))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    state = "committed" if view["committed"] else "not yet committed"
    lines.append(
        f"config at index {view['config_index']} ({state}); leader {view['leader'] or 'unknown'}"
    )
    return "\n".join(lines)


async def _run_member(args: argparse.Namespace) -> int:
    """_run_member: add / remove / list members (protos/client.proto has the codes)."""
    addresses = _addresses(args.cluster)
    async with RaftClient(addresses, deadline_s=args.timeout, tls=_tls_from_args(args)) as client:
        if args.op == "list":
            view = _members_json(await client.list_members(min(args.timeout, 3.0)))
            print(json.dumps(view, indent=2, sort_keys=True) if args.json else _members_table(view))
            return 0
        if args.op == "remove":
            index = await client.remove_member(args.id)
            print(f"removed {args.id} (config entry {index})")
            return 0
        if args.op != "add":
            raise AssertionError(f"unknown member op {args.op!r}")
        peers = parse_peers(args.member)
        if len(peers) != 1:
            raise ConfigError("member add takes exactly one ID=HOST:PORT")
        ((node_id, address),) = peers.items()
        index = await client.add_member(node_id, address)
        print(f"added {node_id} at {address} as a learner (config entry {index})")
        if args.wait is None:
            return 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + args.wait
        while True:
            with contextlib.suppress(ClientError):
                resp = await client.list_members(min(1.0, max(0.05, deadline - loop.time())))
                if any(m.member.id == node_id and m.voter for m in resp.members):
                    print(f"{node_id} is a voter")
                    return 0
            if loop.time() >= deadline:
                break
            await asyncio.sleep(0.1)
    print(
        f"raftwright member add: {node_id} is not a voter within {args.wait:.1f}s"
        " (it stays a learner until it has caught up)",
        file=sys.stderr,
    )
    return EXIT_TIMEOUT


# ---------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    """main is the console-script entry point; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(str(args.log_level), "text")
    try:
        match args.command:
            case "node":
                settings = node_settings_from_args(args)
                node_id = settings.config.node_id
                native = NativeStderr(node_id) if settings.log_format == "json" else None
                stream = native.start() if native is not None else None
                configure_logging(str(args.log_level), settings.log_format, node_id, stream)
                # The start, stop and failure lines show at the default level too.
                log.setLevel(logging.INFO)
                try:
                    return asyncio.run(_run_node(settings.config))
                except ConfigError as exc:  # e.g. a certificate file, checked at start
                    log.error("configuration error: %s", exc)
                    return EXIT_CONFIG
                finally:
                    if native is not None:
                        native.stop()
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
            case "transfer":
                return asyncio.run(_run_transfer(args))
            case "member":
                return asyncio.run(_run_member(args))
            case _:
                parser.error(f"unknown command {args.command!r}")
    except ConfigError as exc:
        print(f"raftwright: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
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
