"""The Prometheus endpoint: scraped over HTTP from a running cluster and parsed.

The text is checked against the exposition format (every sample belongs to a
declared metric family; histogram buckets are cumulative and end in +Inf ==
count) and against the nodes' own state.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from impl import KVClient, Node
from impl._metrics import MetricsServer, metrics_for

from ._opsutil import NodeSpec, OpsCluster, free_ports

pytestmark = [pytest.mark.network, pytest.mark.timeout(90)]

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(?:,|$)')

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse_exposition(text: str) -> tuple[Samples, dict[str, str]]:
    """parse_exposition: samples keyed by (name, labels) and the declared family types."""
    types: dict[str, str] = {}
    samples: Samples = {}
    assert text.endswith("\n")
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            assert kind in ("gauge", "counter", "histogram"), line
            types[name] = kind
            continue
        if line.startswith("# HELP "):
            continue
        match = _SAMPLE.match(line)
        assert match is not None, f"not a sample line: {line!r}"
        name, labels_text, value_text = match.groups()
        labels: list[tuple[str, str]] = []
        if labels_text:
            consumed = 0
            for lm in _LABEL.finditer(labels_text):
                assert lm.start() == consumed, f"bad labels in {line!r}"
                labels.append((lm.group(1), lm.group(2)))
                consumed = lm.end()
            assert consumed == len(labels_text), f"bad labels in {line!r}"
        family = re.sub(r"_(bucket|sum|count)$", "", name)
        assert name in types or (family in types and types[family] == "histogram"), line
        value = math.inf if value_text == "+Inf" else float(value_text)
        key = (name, frozenset(labels))
        assert key not in samples, f"duplicate sample {line!r}"
        samples[key] = value
    return samples, types


def check_histograms(samples: Samples, types: dict[str, str]) -> None:
    for family, kind in types.items():
        if kind != "histogram":
            continue
        series: dict[frozenset[tuple[str, str]], list[tuple[float, float]]] = {}
        for (name, labels), value in samples.items():
            if name == f"{family}_bucket":
                le = dict(labels)["le"]
                rest = frozenset(p for p in labels if p[0] != "le")
                bound = math.inf if le == "+Inf" else float(le)
                series.setdefault(rest, []).append((bound, value))
        for rest, buckets in series.items():
            buckets.sort()
            counts = [c for _, c in buckets]
            assert counts == sorted(counts), f"{family} buckets not cumulative"
            assert buckets[-1][0] == math.inf
            assert buckets[-1][1] == samples[(f"{family}_count", rest)]


async def scrape(port: int, path: str = "/metrics") -> tuple[str, str]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    await writer.drain()
    raw = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    await writer.wait_closed()
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].decode()
    assert b"Content-Length: %d" % len(body) in head
    return status_line, body.decode()


def _renderer(node: Node) -> Callable[[], str]:
    nm = metrics_for(node)
    return lambda: nm.render(node.status())


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def test_metrics_endpoint_reports_role_indexes_rpc_and_persist_latency(tmp_path: Path) -> None:
    async def scenario() -> None:
        # Long timeouts keep one leader through the test on a loaded machine.
        cluster = OpsCluster(tmp_path, election_timeout_ms=(800, 1600), heartbeat_ms=50)
        servers: dict[str, MetricsServer] = {}
        try:
            for node_id in cluster.peers:
                node = await cluster.start(node_id, NodeSpec())
                port = free_ports(1)[0]
                server = MetricsServer(f"127.0.0.1:{port}", _renderer(node))
                await server.start()
                servers[node_id] = server
            leader = await cluster.wait_leader(list(cluster.peers))
            async with KVClient([cluster.peers[leader]]) as kv:
                for i in range(6):
                    await kv.put(f"k{i}", b"v")
            node = cluster.nodes[leader]
            status_line, text = await scrape(servers[leader].port)
            assert status_line == "HTTP/1.1 200 OK"
            samples, types = parse_exposition(text)
            check_histograms(samples, types)
            st = node.status()
            assert value(samples, "raftwright_role", node=leader, role="leader") == 1
            assert value(samples, "raftwright_role", node=leader, role="follower") == 0
            assert value(samples, "raftwright_term", node=leader) == st.term
            assert value(samples, "raftwright_commit_index", node=leader) >= 6
            assert value(samples, "raftwright_applied_index", node=leader) >= 6
            lag = value(samples, "raftwright_apply_lag", node=leader)
            assert lag == value(samples, "raftwright_commit_index", node=leader) - value(
                samples, "raftwright_applied_index", node=leader
            )
            assert types["raftwright_elections_total"] == "counter"
            put = "/raftwright.v1.KeyValue/Put"
            assert (
                value(samples, "raftwright_rpc_duration_seconds_count", node=leader, method=put)
                == 6
            )
            assert (
                value(samples, "raftwright_rpc_duration_seconds_sum", node=leader, method=put) > 0
            )
            assert (
                value(samples, "raftwright_storage_persist_seconds_count", node=leader, op="save")
                > 0
            )
            # Followers persist too (their appends), and report their role.
            follower = next(i for i in cluster.peers if i != leader)
            _, ftext = await scrape(servers[follower].port)
            fsamples, ftypes = parse_exposition(ftext)
            check_histograms(fsamples, ftypes)
            assert value(fsamples, "raftwright_role", node=follower, role="follower") == 1
            assert (
                value(
                    fsamples, "raftwright_storage_persist_seconds_count", node=follower, op="save"
                )
                > 0
            )
            # Only /metrics is served.
            status_line, _ = await scrape(servers[leader].port, "/other")
            assert status_line == "HTTP/1.1 404 Not Found"
        finally:
            for server in servers.values():
                await server.stop()
            await cluster.stop_all()

    asyncio.run(scenario())


def _by_kind(samples: Samples, name: str, node: str, peer: str) -> dict[str, float]:
    """_by_kind: kind -> value of a {node, peer, kind} counter family."""
    out: dict[str, float] = {}
    for (sample, labels), v in samples.items():
        d = dict(labels)
        if sample == name and d.get("node") == node and d.get("peer") == peer:
            out[d["kind"]] = v
    return out


def test_peer_stream_metrics_after_writes(tmp_path: Path) -> None:
    """Scraped over HTTP from a real 3-node cluster after writes: the stream is measured.

    Followers receive the leader's appends (with entries) and heartbeats on
    the stream and write an append_response for each; each received batch is
    timed (receipt to its replies written) and sized. Every write commits
    through an append with entries whose acknowledgement made it committed
    (section 5.3), and with one write at a time those appends are distinct,
    so the followers together received at least one append per write. The
    leader won prevote and vote quorums (section 5.2, thesis 9.6), so some
    follower received a prevote and a vote from it.
    """
    writes = 8

    async def scenario() -> None:
        cluster = OpsCluster(tmp_path, election_timeout_ms=(800, 1600), heartbeat_ms=50)
        servers: dict[str, MetricsServer] = {}
        try:
            for node_id in cluster.peers:
                node = await cluster.start(node_id, NodeSpec())
                server = MetricsServer(f"127.0.0.1:{free_ports(1)[0]}", _renderer(node))
                await server.start()
                servers[node_id] = server
            leader = await cluster.wait_leader(list(cluster.peers))
            async with KVClient([cluster.peers[leader]]) as kv:
                for i in range(writes):
                    await kv.put(f"k{i}", b"v" * 100)
            followers = [i for i in cluster.peers if i != leader]
            scraped: dict[str, Samples] = {}
            for node_id in followers:
                _, text = await scrape(servers[node_id].port)
                samples, types = parse_exposition(text)
                check_histograms(samples, types)
                assert types["raftwright_peer_stream_batch_seconds"] == "histogram"
                assert types["raftwright_peer_stream_messages_total"] == "counter"
                scraped[node_id] = samples
            # What the leader wrote to each follower, read after the scrape.
            sent = cluster.nodes[leader]._senders.stream_stats()  # type: ignore[union-attr]
            appends = 0
            elected_by: list[str] = []
            for node_id, samples in scraped.items():
                got = _by_kind(samples, "raftwright_peer_stream_messages_total", node_id, leader)
                replies = _by_kind(samples, "raftwright_peer_stream_replies_total", node_id, leader)
                labels = {"node": node_id, "peer": leader}
                batches = value(samples, "raftwright_peer_stream_batch_messages_count", **labels)
                in_batches = value(samples, "raftwright_peer_stream_batch_messages_sum", **labels)
                handled = value(samples, "raftwright_peer_stream_batch_seconds_count", **labels)
                assert got.get("heartbeat", 0) > 0, got
                # Each message received once, in some batch; no more than the leader wrote.
                assert in_batches == sum(got.values()) <= sent[node_id][2]
                assert 0 < batches <= sent[node_id][1]
                # A batch is timed once its replies are written: at most once each.
                assert 0 < handled <= batches
                assert value(samples, "raftwright_peer_stream_batch_seconds_sum", **labels) > 0
                # Every append answered at most once; those of handled batches answered.
                answered = replies.get("append_response", 0)
                assert 0 < answered <= got.get("append", 0) + got.get("heartbeat", 0)
                assert value(samples, "raftwright_peer_streams_open", node=node_id) >= 1
                assert value(samples, "raftwright_peer_stream_calls_total", node=node_id) >= 1
                appends += int(got.get("append", 0))
                if got.get("prevote", 0) and got.get("vote", 0):
                    elected_by.append(node_id)
            assert appends >= writes, scraped
            assert elected_by, "no follower saw the leader's prevote and vote"
        finally:
            for server in servers.values():
                await server.stop()
            await cluster.stop_all()

    asyncio.run(scenario())


def test_refusals_are_counted_each_and_logged_once_per_window(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A node that keeps retrying must not flood the log: one line per 10 s per caller/reason."""

    async def scenario() -> None:
        cluster = OpsCluster(tmp_path, n=1)
        try:
            node = await cluster.start("n1", NodeSpec())
            metrics = metrics_for(node)
            with caplog.at_level(logging.WARNING, logger="raftwright.transport"):
                for _ in range(5):
                    metrics.refused("Stream", "identity", "sender 'n3' refused", "ipv4:1.2.3.4:5")
                metrics.refused("Stream", "identity", "other caller", "ipv4:1.2.3.4:6")
                metrics.refused("RequestVote", "unknown_sender", "unknown sender 'x'", "c")
            lines = [r.getMessage() for r in caplog.records if r.name == "raftwright.transport"]
            assert len(lines) == 3, lines
            assert metrics.peer_refusals.value("Stream", "identity") == 6
            assert metrics.peer_refusals.value("RequestVote", "unknown_sender") == 1
            with pytest.raises(ValueError, match="unknown refusal reason"):
                metrics.refused("Stream", "bored", "", "c")
            samples, types = parse_exposition(metrics.render(node.status()))
            assert types["raftwright_peer_refusals_total"] == "counter"
            refusals = "raftwright_peer_refusals_total"
            assert value(samples, refusals, node="n1", method="Stream", reason="identity") == 6
            # No stream yet: the unlabelled counter still shows 0, the gauge too.
            assert value(samples, "raftwright_peer_stream_calls_total", node="n1") == 0
            assert value(samples, "raftwright_peer_streams_open", node="n1") == 0
        finally:
            await cluster.stop_all()

    asyncio.run(scenario())
