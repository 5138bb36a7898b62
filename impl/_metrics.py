"""Prometheus metrics of one node: gauges read at scrape time, RPC and persist histograms.

Why hand-written: the exposition format is a few lines of text, and one
registry per Node (not prometheus_client's process-global one) lets several
nodes share a process, as the loopback tests do.

What is measured where:

- role, term, commit and applied index, apply lag, log size: read from
  ``node.status()`` at each scrape, so nothing in the node's hot path;
- elections: term increases seen since this node started. With pre-vote a
  term rises only when a real election starts somewhere, so this counts the
  elections this node took part in or learned of;
- RPC latency per gRPC method: a grpc.aio server interceptor (unary and
  client-streaming handlers; a long-lived stream has no useful call latency);
- the peer stream (RaftPeer.Stream), per received batch, by the transport:
  handling time (receipt to the last reply written, so the follower's persist
  is in it), messages per batch, messages by kind and replies by kind, calls
  accepted and open;
- peer refusals (the stream and the unary peer RPCs), by method and reason,
  each also logged (rate-limited): malformed input, another cluster, an
  unknown sender, a sender the caller's certificate does not name;
- persist latency (one storage call per Ready: the fsync of the group commit):
  a wrapper around the node's Storage.

``raftwright node --metrics-listen HOST:PORT`` serves GET /metrics with
MetricsServer.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import math
import time
import weakref
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias, assert_never

import grpc
from grpc import aio

from impl._config import parse_address
from impl._core import (
    AppendRequest,
    AppendResponse,
    Message,
    SnapshotRequest,
    SnapshotResponse,
    TimeoutNow,
    VoteRequest,
    VoteResponse,
)

if TYPE_CHECKING:
    from impl._core import Entry, HardState, SnapshotMeta, StoredState
    from impl._node import Node, NodeStatus
    from impl._storage import Storage

__all__ = [
    "CONTENT_TYPE",
    "REFUSAL_REASONS",
    "Counter",
    "Histogram",
    "MetricsServer",
    "NodeMetrics",
    "message_kind",
    "metrics_for",
]

log = logging.getLogger("raftwright.transport")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Seconds: from 100 us (an in-memory RPC) to 10 s (a snapshot transfer).
RPC_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
               0.5, 1.0, 2.5, 5.0, 10.0)  # fmt: skip
PERSIST_BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                   0.05, 0.1, 0.25, 0.5, 1.0)  # fmt: skip
# Messages per peer-stream batch.
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
ROLES = ("follower", "precandidate", "candidate", "leader", "stopped")
# Why a peer message was refused (the reason label of raftwright_peer_refusals_total).
REFUSAL_REASONS = ("malformed", "wrong_cluster", "unknown_sender", "identity", "protocol")
# At most one refusal log line per (method, reason, caller) in this many seconds.
_REFUSAL_LOG_EVERY_S = 10.0


def message_kind(msg: Message) -> str:
    """message_kind is the kind label of a peer message (heartbeat: an append without entries)."""
    match msg:
        case AppendRequest():
            return "append" if msg.entries else "heartbeat"
        case AppendResponse():
            return "append_response"
        case VoteRequest():
            return "prevote" if msg.prevote else "vote"
        case VoteResponse():
            return "prevote_response" if msg.prevote else "vote_response"
        case TimeoutNow():
            return "timeout_now"
        case SnapshotRequest():
            return "snapshot"
        case SnapshotResponse():
            return "snapshot_response"
        case _:
            assert_never(msg)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(pairs: Sequence[tuple[str, str]]) -> str:
    if not pairs:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in pairs) + "}"


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))


class Histogram:
    """Histogram with fixed buckets and one optional label (e.g. the gRPC method)."""

    def __init__(self, name: str, help_text: str, buckets: Sequence[float], label: str | None):
        self.name = name
        self.help = help_text
        self.buckets = tuple(sorted(buckets))
        self.label = label
        # label value -> (per-bucket counts (not cumulative), sum, count)
        self._series: dict[str, tuple[list[int], list[float]]] = {}

    def observe(self, seconds: float, label_value: str = "") -> None:
        series = self._series.get(label_value)
        if series is None:
            series = ([0] * (len(self.buckets) + 1), [0.0, 0.0])
            self._series[label_value] = series
        counts, totals = series
        # The first bucket whose bound is >= seconds (the last one is +Inf).
        counts[bisect.bisect_left(self.buckets, seconds)] += 1
        totals[0] += seconds
        totals[1] += 1

    def count(self, label_value: str = "") -> int:
        series = self._series.get(label_value)
        return int(series[1][1]) if series is not None else 0

    def render(self, out: list[str], base: Sequence[tuple[str, str]]) -> None:
        out.append(f"# HELP {self.name} {self.help}")
        out.append(f"# TYPE {self.name} histogram")
        for label_value in sorted(self._series):
            counts, (total, n) = self._series[label_value]
            pairs = list(base)
            if self.label is not None:
                pairs.append((self.label, label_value))
            cumulative = 0
            for bound, c in zip((*self.buckets, math.inf), counts, strict=True):
                cumulative += c
                le = _labels([*pairs, ("le", _number(bound))])
                out.append(f"{self.name}_bucket{le} {cumulative}")
            out.append(f"{self.name}_sum{_labels(pairs)} {_number(total)}")
            out.append(f"{self.name}_count{_labels(pairs)} {_number(n)}")


class Counter:
    """Counter: a monotonically rising count per combination of label values."""

    def __init__(self, name: str, help_text: str, labels: Sequence[str]) -> None:
        self.name = name
        self.help = help_text
        self.labels = tuple(labels)
        self._values: dict[tuple[str, ...], int] = {}

    def inc(self, *label_values: str, by: int = 1) -> None:
        if len(label_values) != len(self.labels):
            raise ValueError(f"{self.name} takes labels {self.labels}, got {label_values}")
        self._values[label_values] = self._values.get(label_values, 0) + by

    def value(self, *label_values: str) -> int:
        return self._values.get(label_values, 0)

    def total(self) -> int:
        return sum(self._values.values())

    def render(self, out: list[str], base: Sequence[tuple[str, str]]) -> None:
        out.append(f"# HELP {self.name} {self.help}")
        out.append(f"# TYPE {self.name} counter")
        if not self.labels and not self._values:
            out.append(f"{self.name}{_labels(base)} 0")
        for values in sorted(self._values):
            pairs = [*base, *zip(self.labels, values, strict=True)]
            out.append(f"{self.name}{_labels(pairs)} {self._values[values]}")


class _TimedStorage:
    """_TimedStorage forwards to the node's Storage and times every write (on its thread)."""

    def __init__(self, inner: Storage, metrics: NodeMetrics) -> None:
        self._inner = inner
        self._metrics = metrics

    def load(self) -> StoredState:
        return self._inner.load()

    def save(self, hard_state: HardState | None, entries: Sequence[Entry]) -> None:
        start = time.perf_counter()
        self._inner.save(hard_state, entries)
        self._metrics.persist.observe(time.perf_counter() - start, "save")

    def save_snapshot(self, meta: SnapshotMeta, data: bytes) -> None:
        start = time.perf_counter()
        self._inner.save_snapshot(meta, data)
        self._metrics.persist.observe(time.perf_counter() - start, "save_snapshot")

    def load_snapshot(self) -> tuple[SnapshotMeta, bytes] | None:
        return self._inner.load_snapshot()

    def close(self) -> None:
        self._inner.close()


_Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"


class _RpcTimer(aio.ServerInterceptor):  # type: ignore[type-arg]
    """_RpcTimer times each unary and client-streaming handler, by full method name."""

    def __init__(self, metrics: NodeMetrics) -> None:
        self._metrics = metrics

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[_Handler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> _Handler:
        handler: _Handler | None = await continuation(handler_call_details)
        if handler is None:  # unknown method: grpc answers UNIMPLEMENTED
            return None  # type: ignore[return-value]
        method = handler_call_details.method
        metrics = self._metrics
        fn = handler.unary_unary or handler.stream_unary
        if fn is None:  # streaming responses (health Watch, reflection): not timed
            return handler
        inner: Callable[[Any, Any], Awaitable[Any]] = fn

        async def timed(request: Any, context: Any) -> Any:
            start = time.perf_counter()
            failed = True
            try:
                result = await inner(request, context)
                failed = False
                return result
            finally:
                metrics.rpc.observe(time.perf_counter() - start, method)
                if failed:
                    metrics.rpc_failures[method] = metrics.rpc_failures.get(method, 0) + 1

        field = "unary_unary" if handler.unary_unary is not None else "stream_unary"
        replaced: grpc.RpcMethodHandler[Any, Any] = handler._replace(**{field: timed})  # type: ignore[attr-defined]
        return replaced


class NodeMetrics:
    """NodeMetrics of one node; get it with metrics_for(node)."""

    def __init__(self, node: Node) -> None:
        self._node = weakref.ref(node)
        self.rpc = Histogram(
            "raftwright_rpc_duration_seconds",
            "Server-side gRPC handler latency by method.",
            RPC_BUCKETS,
            "method",
        )
        self.rpc_failures: dict[str, int] = {}
        self.persist = Histogram(
            "raftwright_storage_persist_seconds",
            "Latency of one durable storage write (hard state + entries, fsync included).",
            PERSIST_BUCKETS,
            "op",
        )
        self.peer_refusals = Counter(
            "raftwright_peer_refusals_total",
            "Peer messages refused before reaching the core, by gRPC method and reason"
            " (malformed, wrong_cluster, unknown_sender, identity, protocol).",
            ("method", "reason"),
        )
        self.stream_calls = Counter(
            "raftwright_peer_stream_calls_total", "RaftPeer.Stream calls accepted.", ()
        )
        self.streams_open = 0
        self.stream_batch = Histogram(
            "raftwright_peer_stream_batch_seconds",
            "Peer-stream batch handling time, from receipt to the last reply it produced"
            " written back (the node's persist included), by sending peer.",
            RPC_BUCKETS,
            "peer",
        )
        self.stream_batch_messages = Histogram(
            "raftwright_peer_stream_batch_messages",
            "Messages per received peer-stream batch, by sending peer.",
            BATCH_BUCKETS,
            "peer",
        )
        self.stream_messages = Counter(
            "raftwright_peer_stream_messages_total",
            "Messages received on the peer stream and handed to the core, by peer and kind.",
            ("peer", "kind"),
        )
        self.stream_replies = Counter(
            "raftwright_peer_stream_replies_total",
            "Replies written back on the peer stream, by peer and kind.",
            ("peer", "kind"),
        )
        self._refusal_logged: dict[tuple[str, str, str], tuple[float, int]] = {}
        self._first_term: int | None = None

    def refused(self, method: str, reason: str, detail: str, caller: str) -> None:
        """refused counts one refused peer RPC or batch and logs it (rate-limited).

        caller is the gRPC peer address. A misconfigured node retries every
        few milliseconds, so each (method, reason, caller) logs at most one
        line per 10 s, saying how many it held back.
        """
        if reason not in REFUSAL_REASONS:
            raise ValueError(f"unknown refusal reason {reason!r}")
        self.peer_refusals.inc(method, reason)
        key = (method, reason, caller)
        now = time.monotonic()
        last, held = self._refusal_logged.get(key, (-math.inf, 0))
        if now - last < _REFUSAL_LOG_EVERY_S:
            self._refusal_logged[key] = (last, held + 1)
            return
        self._refusal_logged[key] = (now, 0)
        more = f" ({held} more since the last report)" if held else ""
        log.warning("refused %s from %s (%s): %s%s", method, caller, reason, detail, more)

    def batch_received(self, peer: str, msgs: Sequence[Message]) -> None:
        """batch_received counts a batch handed to the core, by message kind."""
        self.stream_batch_messages.observe(len(msgs), peer)
        kinds: dict[str, int] = {}
        for msg in msgs:  # one counter update per kind, not per message (the hot path)
            kind = message_kind(msg)
            kinds[kind] = kinds.get(kind, 0) + 1
        for kind, n in kinds.items():
            self.stream_messages.inc(peer, kind, by=n)

    def batch_handled(self, peer: str, seconds: float) -> None:
        """batch_handled records one batch's handling time (its replies are written)."""
        self.stream_batch.observe(seconds, peer)

    def reply_sent(self, peer: str, msg: Message) -> None:
        self.stream_replies.inc(peer, message_kind(msg))

    def interceptor(self) -> aio.ServerInterceptor:  # type: ignore[type-arg]
        """interceptor for the node's server.

        build_server calls it once, after the core loaded its stored term: that
        term is the base of raftwright_elections_total.
        """
        node = self._node()
        if node is not None and self._first_term is None:
            self._first_term = node.term
        return _RpcTimer(self)

    def wrap_storage(self, storage: Storage) -> Storage:
        return _TimedStorage(storage, self)

    def render(self, status: NodeStatus) -> str:
        """render is the Prometheus text exposition of this node now."""
        base = [("node", status.id)]
        out: list[str] = []

        def gauge(name: str, help_text: str, value: float, kind: str = "gauge") -> None:
            out.append(f"# HELP {name} {help_text}")
            out.append(f"# TYPE {name} {kind}")
            out.append(f"{name}{_labels(base)} {_number(value)}")

        out.append("# HELP raftwright_role 1 for the node's current role, 0 for the others.")
        out.append("# TYPE raftwright_role gauge")
        for role in ROLES:
            out.append(
                f"raftwright_role{_labels([*base, ('role', role)])} {int(status.role == role)}"
            )
        gauge("raftwright_term", "Current Raft term.", status.term)
        gauge("raftwright_commit_index", "Highest log index known committed.", status.commit_index)
        gauge("raftwright_applied_index", "Highest log index applied.", status.applied_index)
        gauge(
            "raftwright_apply_lag",
            "Committed entries not yet applied (commit_index - applied_index).",
            max(0, status.commit_index - status.applied_index),
        )
        gauge("raftwright_log_entries", "Entries held in the in-memory log.", status.log_size)
        gauge("raftwright_snapshot_index", "Index of the latest snapshot.", status.snapshot_index)
        gauge(
            "raftwright_is_leader_known",
            "1 when this node knows a leader.",
            int(status.leader is not None),
        )
        first = self._first_term if self._first_term is not None else status.term
        gauge(
            "raftwright_elections_total",
            "Elections since this node started: term increases (with pre-vote a term"
            " rises only when a real election starts).",
            max(0, status.term - first),
            "counter",
        )
        self.rpc.render(out, base)
        out.append("# HELP raftwright_rpc_failures_total gRPC handlers that ended in an error.")
        out.append("# TYPE raftwright_rpc_failures_total counter")
        for method in sorted(self.rpc_failures):
            labels = _labels([*base, ("method", method)])
            out.append(f"raftwright_rpc_failures_total{labels} {self.rpc_failures[method]}")
        self.persist.render(out, base)
        self.peer_refusals.render(out, base)
        self.stream_calls.render(out, base)
        gauge("raftwright_peer_streams_open", "RaftPeer.Stream calls open now.", self.streams_open)
        self.stream_batch.render(out, base)
        self.stream_batch_messages.render(out, base)
        self.stream_messages.render(out, base)
        self.stream_replies.render(out, base)
        return "\n".join(out) + "\n"


_BY_NODE: weakref.WeakKeyDictionary[Node, NodeMetrics] = weakref.WeakKeyDictionary()


def metrics_for(node: Node) -> NodeMetrics:
    """metrics_for returns the node's NodeMetrics, creating it on first use."""
    metrics = _BY_NODE.get(node)
    if metrics is None:
        metrics = NodeMetrics(node)
        _BY_NODE[node] = metrics
    return metrics


class MetricsServer:
    """MetricsServer answers GET /metrics over plain HTTP/1.1 (one request per connection)."""

    def __init__(self, listen: str, render: Callable[[], str]) -> None:
        self._host, self._port = parse_address(listen)
        self._render = render
        self._server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        host = self._host.strip("[]")
        self._server = await asyncio.start_server(self._handle, host, self._port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5.0)
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
                return
            request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
            parts = request_line.split()
            method, target = (parts[0], parts[1]) if len(parts) >= 2 else ("", "")
            path = target.split("?", 1)[0]
            if method not in ("GET", "HEAD"):
                status, ctype, body = "405 Method Not Allowed", "text/plain", b"GET only\n"
            elif path != "/metrics":
                status, ctype, body = "404 Not Found", "text/plain", b"try /metrics\n"
            else:
                status, ctype, body = "200 OK", CONTENT_TYPE, self._render().encode()
            header = (
                f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            ).encode("latin-1")
            writer.write(header if method == "HEAD" else header + body)
            await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
