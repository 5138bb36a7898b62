"""gRPC transport: the server side (RaftPeer, RaftClient, KeyValue) and the peer senders.

Server: one grpc.aio server per node hosts all three services. Handlers are
registered with tolerant deserializers so that bytes which are not a valid
protobuf are answered with INVALID_ARGUMENT (grpc's default would be an
opaque INTERNAL); a message from another cluster or an unknown sender gets
PERMISSION_DENIED. In both cases the node is not touched.

Peer messages normally travel on RaftPeer.Stream, one long-lived bidirectional
call per (sender, receiver) pair: the sender writes PeerBatches of requests
(impl/_peer_stream.py), the receiver feeds each batch to the node in order and
writes back the replies the core produced, each once the node made the state it
depends on durable (a request without a reply is simply not answered). A
refused batch aborts the call: INVALID_ARGUMENT for malformed input,
PERMISSION_DENIED for an unknown sender or another cluster, and nothing of the
batch reaches the node.

The unary methods stay (fallback, tools, tests): the server hands a request to
the node and returns whatever reply the core produced for that sender; when
the core has no reply the response carries an empty sender and the caller
ignores it. Snapshots always use InstallSnapshot (a client stream of chunks).

Senders: one channel per peer; a failed call or stream just drops what it
carried, because Raft retries by itself.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import TYPE_CHECKING, Any, NoReturn, assert_never

import grpc
from grpc import aio

from impl._convert import (
    EntryEncoder,
    MalformedProtoError,
    SnapshotAssembler,
    append_request_from_pb,
    append_request_to_pb,
    append_response_from_pb,
    append_response_to_pb,
    peer_message_from_pb,
    peer_message_header,
    peer_message_to_pb,
    snapshot_chunks,
    snapshot_response_from_pb,
    snapshot_response_to_pb,
    timeout_now_from_pb,
    timeout_now_to_pb,
    vote_request_from_pb,
    vote_request_to_pb,
    vote_response_from_pb,
    vote_response_to_pb,
)
from impl._core import (
    AppendRequest,
    AppendResponse,
    Envelope,
    MalformedMessage,
    Message,
    ProtocolError,
    SnapshotRequest,
    SnapshotResponse,
    TimeoutNow,
    UnknownSender,
    VoteRequest,
    VoteResponse,
    WrongCluster,
)
from impl._grpc_errors import abort_for
from impl._health import add_ops_services
from impl._kv import encode_delete, encode_get, encode_put
from impl._metrics import metrics_for
from impl._node_errors import (
    NodeStoppedError,
    NotLeaderError,
    ProposalLostError,
    TransferInProgressError,
)
from impl._peer_stream import PeerStream
from impl._security import PeerIdentityCheck, node_server_credentials
from impl.generated import client_pb2, kv_pb2, raft_pb2

if TYPE_CHECKING:
    from impl._node import Node

__all__ = ["CHANNEL_OPTIONS", "PeerSenders", "build_server"]

log = logging.getLogger("raftwright.transport")

# Reconnect quickly after a peer restarts (grpc's default backoff grows to 120 s).
CHANNEL_OPTIONS: list[tuple[str, Any]] = [
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
    ("grpc.enable_retries", 0),
    ("grpc.max_send_message_length", 64 << 20),
    ("grpc.max_receive_message_length", 64 << 20),
]

_SERVER_OPTIONS: list[tuple[str, Any]] = [
    ("grpc.max_send_message_length", 64 << 20),
    ("grpc.max_receive_message_length", 64 << 20),
    ("grpc.so_reuseport", 0),
]


class _Undecodable:
    """Marker returned by the tolerant deserializer for bytes that are not a protobuf."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


def _tolerant(parse: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    def deserialize(data: bytes) -> Any:
        try:
            return parse(data)
        except Exception as exc:  # DecodeError and friends: any failure means malformed
            return _Undecodable(str(exc) or type(exc).__name__)

    return deserialize


def _as_bytes(data: bytes) -> bytes:
    return data


def _serialize(msg: Any) -> bytes:
    data: bytes = msg.SerializeToString()
    return data


# ---------------------------------------------------------------- server side

_DENIED = grpc.StatusCode.PERMISSION_DENIED
_MALFORMED = grpc.StatusCode.INVALID_ARGUMENT
_Refusal = tuple[str, grpc.StatusCode, str]  # (metrics reason, status code, details)


def _delivery_refusal(exc: Exception) -> _Refusal | None:
    """_delivery_refusal maps the node's refusal of a delivered message to its answer."""
    match exc:
        case UnknownSender():
            return ("unknown_sender", _DENIED, str(exc))
        case WrongCluster():
            return ("wrong_cluster", _DENIED, str(exc))
        case MalformedMessage():
            return ("malformed", _MALFORMED, str(exc))
        case ProtocolError():
            return ("protocol", grpc.StatusCode.FAILED_PRECONDITION, str(exc))
        case _:
            return None


class _PeerService:
    """RaftPeer handlers: validate, convert, hand to the node, return its reply."""

    def __init__(self, node: Node) -> None:
        self._node = node
        self._cluster_id = node.config.cluster_id
        self.node = node
        self.cluster_id = self._cluster_id
        # Mutual TLS binds a sender to its certificate (impl/_security.py, verify_peer_id).
        self.identity = PeerIdentityCheck.for_node(node.config)
        self.metrics = metrics_for(node)

    async def stream(
        self, batches: AsyncIterator[Any], context: aio.ServicerContext[Any, Any]
    ) -> None:
        """stream serves the long-lived peer stream (see _StreamHandler)."""
        await _StreamHandler(self).serve(batches, context)

    async def _refuse(
        self,
        context: aio.ServicerContext[Any, Any],
        method: str,
        reason: str,
        code: grpc.StatusCode,
        details: str,
    ) -> NoReturn:
        """_refuse counts and logs a refused peer RPC (impl/_metrics.py), then aborts it."""
        self.metrics.refused(method, reason, details, context.peer())
        await context.abort(code, details)

    def sender_refusal(
        self, cluster_id: str, sender: str, leaderish: bool, names: frozenset[str] | None
    ) -> _Refusal | None:
        """sender_refusal: why a message from ``sender`` may not reach the node, or None.

        Another cluster's, a stranger's (members of the config in use pass, and so does a
        leader's append to a new learner, thesis 4.2.1), or one the caller's certificate
        does not name (``names``: who the caller may speak for; None: anyone).
        """
        if cluster_id != self.cluster_id:
            return ("wrong_cluster", _DENIED, f"wrong cluster id {cluster_id!r}")
        if not self.node.accepts_sender(sender, leaderish):
            return ("unknown_sender", _DENIED, f"unknown sender {sender!r}")
        why = self.identity.refusal(names, sender)
        if why is not None:
            return ("identity", _DENIED, why)
        return None

    async def _check(self, pb: Any, context: aio.ServicerContext[Any, Any], method: str) -> None:
        if isinstance(pb, _Undecodable):
            await self._refuse(context, method, "malformed", _MALFORMED, f"malformed: {pb.reason}")
        leaderish = isinstance(pb, raft_pb2.AppendRequest | raft_pb2.SnapshotChunk)
        names = self.identity.names(context.auth_context())
        refusal = self.sender_refusal(pb.cluster_id, pb.sender, leaderish, names)
        if refusal is not None:
            await self._refuse(context, method, *refusal)

    async def _deliver(
        self, msg: Message, context: aio.ServicerContext[Any, Any], method: str
    ) -> Message | None:
        try:
            return await self._node.deliver(msg)
        except NodeStoppedError as exc:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
        except Exception as exc:
            refusal = _delivery_refusal(exc)
            if refusal is None:
                raise
            await self._refuse(context, method, *refusal)

    async def _convert(
        self,
        fn: Callable[[Any], Message],
        pb: Any,
        context: aio.ServicerContext[Any, Any],
        method: str,
    ) -> Message:
        try:
            return fn(pb)
        except MalformedProtoError as exc:
            malformed = grpc.StatusCode.INVALID_ARGUMENT
            await self._refuse(context, method, "malformed", malformed, str(exc))

    async def request_vote(
        self, pb: Any, context: aio.ServicerContext[Any, Any]
    ) -> raft_pb2.VoteResponse:
        method = "RequestVote"
        await self._check(pb, context, method)
        msg = await self._convert(vote_request_from_pb, pb, context, method)
        reply = await self._deliver(msg, context, method)
        if isinstance(reply, VoteResponse):
            return vote_response_to_pb(reply)
        return raft_pb2.VoteResponse()

    async def append_entries(
        self, pb: Any, context: aio.ServicerContext[Any, Any]
    ) -> raft_pb2.AppendResponse:
        method = "AppendEntries"
        await self._check(pb, context, method)
        msg = await self._convert(append_request_from_pb, pb, context, method)
        reply = await self._deliver(msg, context, method)
        if isinstance(reply, AppendResponse):
            return append_response_to_pb(reply)
        return raft_pb2.AppendResponse()

    async def install_snapshot(
        self, chunks: AsyncIterator[Any], context: aio.ServicerContext[Any, Any]
    ) -> raft_pb2.SnapshotResponse:
        method = "InstallSnapshot"
        malformed = grpc.StatusCode.INVALID_ARGUMENT
        assembler = SnapshotAssembler()
        first = True
        async for chunk in chunks:
            if isinstance(chunk, _Undecodable):
                details = f"malformed: {chunk.reason}"
                await self._refuse(context, method, "malformed", malformed, details)
            if first:
                await self._check(chunk, context, method)
                first = False
            try:
                assembler.add(chunk)
            except MalformedProtoError as exc:
                await self._refuse(context, method, "malformed", malformed, str(exc))
        try:
            msg = assembler.result()
        except MalformedProtoError as exc:
            await self._refuse(context, method, "malformed", malformed, str(exc))
        reply = await self._deliver(msg, context, method)
        if isinstance(reply, SnapshotResponse):
            return snapshot_response_to_pb(reply)
        return raft_pb2.SnapshotResponse()

    async def timeout_now(
        self, pb: Any, context: aio.ServicerContext[Any, Any]
    ) -> raft_pb2.TimeoutNowResponse:
        method = "TimeoutNow"
        await self._check(pb, context, method)
        msg = await self._convert(timeout_now_from_pb, pb, context, method)
        await self._deliver(msg, context, method)
        return raft_pb2.TimeoutNowResponse(
            cluster_id=self._cluster_id, sender=self._node.config.node_id, term=self._node.term
        )


class _StreamError:
    """A refused batch on the peer stream: the status the stream is aborted with."""

    __slots__ = ("code", "details")

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        self.code = code
        self.details = details


class _BatchDone:
    """_BatchDone follows a batch's replies in the queue: when it is reached they are written."""

    __slots__ = ("peer", "start")

    def __init__(self, peer: str, start: float) -> None:
        self.peer = peer
        self.start = start


_Pending = asyncio.Future[Message | None] | _StreamError | _BatchDone


class _StreamHandler:
    """_StreamHandler serves one RaftPeer.Stream call.

    A reader task feeds every batch to the node in order, synchronously
    (Node.deliver_nowait), so a batch and whatever else arrived meanwhile lands
    in one Ready and one storage transaction. The handler writes the replies in
    request order, each as soon as the node made its state durable; replies
    that are ready together go out as one batch. A refused batch is checked
    in full before any of it reaches the node, then the stream is aborted
    with the status the unary methods use (INVALID_ARGUMENT, PERMISSION_DENIED),
    counted and logged as a refusal. Under mutual TLS with verify_peer_id every
    message's sender must be a node id the caller's certificate names. Each
    batch's handling time (receipt to its last reply written), size and
    message kinds go to the node's metrics.
    """

    def __init__(self, service: _PeerService) -> None:
        self._service = service
        self._pending: collections.deque[_Pending] = collections.deque()
        self._ready = asyncio.Event()
        self._done = False
        self._names: frozenset[str] | None = None  # who the caller may speak for (None: anyone)
        self._caller = ""  # the gRPC peer address, for the refusal log
        self._peer = ""  # the sender of the latest batch (one peer per stream)

    def _refuse(self, reason: str, code: grpc.StatusCode, details: str) -> bool:
        """_refuse queues the stream's abort, counts and logs it; returns False for _feed."""
        self._service.metrics.refused("Stream", reason, details, self._caller)
        self._pending.append(_StreamError(code, details))
        return False

    def _feed(self, pb: Any) -> bool:
        """_feed delivers one batch; returns False (after queueing the error) if refused."""
        start = time.perf_counter()
        pending = self._pending
        if isinstance(pb, _Undecodable):
            return self._refuse("malformed", _MALFORMED, f"malformed: {pb.reason}")
        svc = self._service
        msgs: list[Message] = []
        for item in pb.messages:
            try:
                cluster_id, sender = peer_message_header(item)
                leaderish = item.WhichOneof("body") == "append_request"
                refusal = svc.sender_refusal(cluster_id, sender, leaderish, self._names)
                if refusal is not None:
                    return self._refuse(*refusal)
                msgs.append(peer_message_from_pb(item))
            except MalformedProtoError as exc:
                return self._refuse("malformed", _MALFORMED, str(exc))
        node = svc.node
        for msg in msgs:
            try:
                pending.append(node.deliver_nowait(msg))
            except NodeStoppedError as exc:
                pending.append(_StreamError(grpc.StatusCode.UNAVAILABLE, str(exc)))
                return False
            except Exception as exc:
                refusal = _delivery_refusal(exc)
                if refusal is None:
                    raise
                return self._refuse(*refusal)
        if msgs:
            self._peer = msgs[0].sender
        svc.metrics.batch_received(self._peer, msgs)
        pending.append(_BatchDone(self._peer, start))
        return True

    async def _read(self, batches: AsyncIterator[Any]) -> None:
        try:
            async for pb in batches:
                ok = self._feed(pb)
                self._ready.set()
                if not ok:
                    return
        finally:
            self._done = True
            self._ready.set()

    async def serve(
        self, batches: AsyncIterator[Any], context: aio.ServicerContext[Any, Any]
    ) -> None:
        svc = self._service
        metrics = svc.metrics
        self._names = svc.identity.names(context.auth_context())
        self._caller = context.peer()
        metrics.stream_calls.inc()
        metrics.streams_open += 1
        reader = asyncio.get_running_loop().create_task(self._read(batches))
        pending = self._pending
        try:
            while True:
                if not pending:
                    if self._done:
                        return
                    self._ready.clear()
                    await self._ready.wait()
                    continue
                out: list[raft_pb2.PeerMessage] = []
                handled: list[_BatchDone] = []
                head = pending[0]
                if isinstance(head, _StreamError):
                    await context.abort(head.code, head.details)
                try:
                    if isinstance(head, asyncio.Future):
                        await head
                    while pending:
                        head = pending[0]
                        if isinstance(head, _BatchDone):
                            handled.append(head)
                            pending.popleft()
                            continue
                        if isinstance(head, _StreamError) or not head.done():
                            break
                        pending.popleft()
                        reply = head.result()
                        if isinstance(reply, VoteResponse | AppendResponse):
                            out.append(peer_message_to_pb(reply))
                            metrics.reply_sent(self._peer, reply)
                except NodeStoppedError as exc:
                    await context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
                if out:
                    await context.write(raft_pb2.PeerBatch(messages=out))
                now = time.perf_counter()
                for batch in handled:
                    metrics.batch_handled(batch.peer, now - batch.start)
        finally:
            metrics.streams_open -= 1
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
            for item in pending:
                if isinstance(item, asyncio.Future):
                    item.cancel()


class _ClientService:
    """RaftClient and KeyValue handlers on top of Node.propose / Node.read / Node.status."""

    def __init__(self, node: Node) -> None:
        self._node = node

    async def _propose(self, command: bytes, context: aio.ServicerContext[Any, Any]) -> bytes:
        try:
            return await self._node.propose(command)
        except (
            NotLeaderError,
            TransferInProgressError,
            ProposalLostError,
            NodeStoppedError,
        ) as exc:
            await abort_for(exc, context)
            raise

    async def _read(self, query: bytes, context: aio.ServicerContext[Any, Any]) -> bytes:
        try:
            return await self._node.read(query)
        except (NotLeaderError, ProposalLostError, NodeStoppedError) as exc:
            await abort_for(exc, context)
            raise

    @staticmethod
    async def _reject_undecodable(pb: Any, context: aio.ServicerContext[Any, Any]) -> None:
        if isinstance(pb, _Undecodable):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"malformed: {pb.reason}")

    async def propose(self, pb: Any, context: Any) -> client_pb2.ProposeResponse:
        await self._reject_undecodable(pb, context)
        return client_pb2.ProposeResponse(result=await self._propose(pb.command, context))

    async def read(self, pb: Any, context: Any) -> client_pb2.ReadResponse:
        await self._reject_undecodable(pb, context)
        return client_pb2.ReadResponse(result=await self._read(pb.query, context))

    async def status(self, pb: Any, context: Any) -> client_pb2.StatusResponse:
        await self._reject_undecodable(pb, context)
        st = self._node.status()
        return client_pb2.StatusResponse(
            id=st.id,
            role=st.role,
            term=st.term,
            leader=st.leader or "",
            commit_index=st.commit_index,
            applied_index=st.applied_index,
            log_size=st.log_size,
            snapshot_index=st.snapshot_index,
            address=st.address,
            members=dict(st.voters),
            learners=dict(st.learners),
            peers=[
                client_pb2.PeerProgress(id=peer, match_index=match, next_index=nxt)
                for peer, (match, nxt) in sorted(st.peers.items())
            ],
        )

    async def _require_kv(self, context: Any) -> None:
        if not self._node.serves_kv:
            await context.abort(
                grpc.StatusCode.UNIMPLEMENTED, "this node's state machine is not a KVStateMachine"
            )

    async def kv_put(self, pb: Any, context: Any) -> kv_pb2.PutResponse:
        await self._reject_undecodable(pb, context)
        await self._require_kv(context)
        await self._propose(encode_put(pb.key, pb.value, pb.client_id, pb.sequence), context)
        return kv_pb2.PutResponse()

    async def kv_get(self, pb: Any, context: Any) -> kv_pb2.GetResponse:
        await self._reject_undecodable(pb, context)
        await self._require_kv(context)
        return kv_pb2.GetResponse.FromString(await self._read(encode_get(pb.key), context))

    async def kv_delete(self, pb: Any, context: Any) -> kv_pb2.DeleteResponse:
        await self._reject_undecodable(pb, context)
        await self._require_kv(context)
        result = await self._propose(encode_delete(pb.key, pb.client_id, pb.sequence), context)
        return kv_pb2.DeleteResponse(existed=kv_pb2.KvResult.FromString(result).existed)


def _unary(fn: Any, parse: Callable[[bytes], Any]) -> grpc.RpcMethodHandler[Any, Any]:
    return grpc.unary_unary_rpc_method_handler(
        fn, request_deserializer=_tolerant(parse), response_serializer=_serialize
    )


def build_server(node: Node) -> tuple[aio.Server, int]:
    """build_server creates (not starts) the node's server; returns it and the bound port."""
    server = aio.server(options=_SERVER_OPTIONS, interceptors=(metrics_for(node).interceptor(),))
    peer = _PeerService(node)
    client = _ClientService(node)
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                "raftwright.v1.RaftPeer",
                {
                    "Stream": grpc.stream_stream_rpc_method_handler(
                        peer.stream,
                        request_deserializer=_tolerant(raft_pb2.PeerBatch.FromString),
                        response_serializer=_serialize,
                    ),
                    "RequestVote": _unary(peer.request_vote, raft_pb2.VoteRequest.FromString),
                    "AppendEntries": _unary(peer.append_entries, raft_pb2.AppendRequest.FromString),
                    "InstallSnapshot": grpc.stream_unary_rpc_method_handler(
                        peer.install_snapshot,
                        request_deserializer=_tolerant(raft_pb2.SnapshotChunk.FromString),
                        response_serializer=_serialize,
                    ),
                    "TimeoutNow": _unary(peer.timeout_now, raft_pb2.TimeoutNowRequest.FromString),
                },
            ),
            grpc.method_handlers_generic_handler(
                "raftwright.v1.RaftClient",
                {
                    "Propose": _unary(client.propose, client_pb2.ProposeRequest.FromString),
                    "Read": _unary(client.read, client_pb2.ReadRequest.FromString),
                    "Status": _unary(client.status, client_pb2.StatusRequest.FromString),
                },
            ),
            grpc.method_handlers_generic_handler(
                "raftwright.v1.KeyValue",
                {
                    "Put": _unary(client.kv_put, kv_pb2.PutRequest.FromString),
                    "Get": _unary(client.kv_get, kv_pb2.GetRequest.FromString),
                    "Delete": _unary(client.kv_delete, kv_pb2.DeleteRequest.FromString),
                },
            ),
        )
    )
    add_ops_services(server, node)  # health, reflection, TransferLeadership
    return server, _open_port(server, node.config.listen, node_server_credentials(node.config))


def _open_port(
    server: aio.Server, listen: str, credentials: grpc.ServerCredentials | None = None
) -> int:
    """_open_port binds the server's listening port (the one place ports are opened).

    With credentials the port speaks TLS only (impl/_security.py has the rules).
    """
    if credentials is None:
        port = server.add_insecure_port(listen)
    else:
        port = server.add_secure_port(listen, credentials)
    if port == 0:
        raise OSError(f"cannot listen on {listen}")
    return port


def _dial(address: str, credentials: grpc.ChannelCredentials | None = None) -> aio.Channel:
    """_dial opens the channel to one peer (the one place peer channels are dialed)."""
    if credentials is None:
        return aio.insecure_channel(address, options=CHANNEL_OPTIONS)
    return aio.secure_channel(address, credentials, options=CHANNEL_OPTIONS)


# ---------------------------------------------------------------- client side


class _PeerStubs:
    """_PeerStubs caches the four RaftPeer callables of one channel."""

    def __init__(self, channel: aio.Channel) -> None:
        self.stream = channel.stream_stream(
            "/raftwright.v1.RaftPeer/Stream",
            request_serializer=_as_bytes,  # PeerStream writes wire bytes (EntryEncoder)
            response_deserializer=raft_pb2.PeerBatch.FromString,
        )
        self.append = channel.unary_unary(
            "/raftwright.v1.RaftPeer/AppendEntries",
            request_serializer=_serialize,
            response_deserializer=raft_pb2.AppendResponse.FromString,
        )
        self.vote = channel.unary_unary(
            "/raftwright.v1.RaftPeer/RequestVote",
            request_serializer=_serialize,
            response_deserializer=raft_pb2.VoteResponse.FromString,
        )
        self.snapshot = channel.stream_unary(
            "/raftwright.v1.RaftPeer/InstallSnapshot",
            request_serializer=_serialize,
            response_deserializer=raft_pb2.SnapshotResponse.FromString,
        )
        self.timeout_now = channel.unary_unary(
            "/raftwright.v1.RaftPeer/TimeoutNow",
            request_serializer=_serialize,
            response_deserializer=raft_pb2.TimeoutNowResponse.FromString,
        )


class PeerSenders:
    """PeerSenders owns one channel per peer and sends core messages without waiting.

    Appends, votes and TimeoutNow go on one long-lived RaftPeer.Stream call per
    peer (PeerStream; ``stream=False`` uses one unary call per message, the
    fallback); snapshots always use InstallSnapshot. Replies are handed to
    on_reply (the node feeds them to the core). At most max_outstanding
    messages per peer wait (queued on the stream, or unary calls in flight);
    beyond that a message is dropped, which Raft tolerates (the core resends
    on the next heartbeat).
    """

    def __init__(
        self,
        peers: Mapping[str, str],
        on_reply: Callable[[Message], None],
        *,
        max_outstanding: int = 64,
        rpc_timeout_s: float = 1.0,
        snapshot_timeout_s: float = 60.0,
        stream: bool = True,
        credentials: grpc.ChannelCredentials | None = None,
    ) -> None:
        self._credentials = credentials  # TLS for the peer channels (None: plaintext)
        self._addresses = dict(peers)
        self._use_stream = stream
        self._streams: dict[str, PeerStream] = {}
        self._encoder = EntryEncoder()
        self._on_reply = on_reply
        self._max_outstanding = max_outstanding
        self._rpc_timeout_s = rpc_timeout_s
        self._snapshot_timeout_s = snapshot_timeout_s
        self._channels: dict[str, aio.Channel] = {}
        self._peer_stubs: dict[str, _PeerStubs] = {}
        self._outstanding: dict[str, int] = dict.fromkeys(peers, 0)
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        self._dropped = 0

    @property
    def dropped(self) -> int:
        """dropped counts messages not sent because too many were waiting or a call failed."""
        return self._dropped + sum(st.dropped for st in self._streams.values())

    def stream_stats(self) -> dict[str, tuple[int, int, int]]:
        """stream_stats: peer -> (calls opened, batches written, messages written)."""
        return {
            peer: (st.calls_opened, st.batches_sent, st.messages_sent)
            for peer, st in self._streams.items()
        }

    def _stream(self, peer: str) -> PeerStream:
        st = self._streams.get(peer)
        if st is None:
            stubs = self._stubs(peer)
            st = PeerStream(
                peer,
                lambda: stubs.stream(None),
                self._on_reply,
                max_queued=self._max_outstanding,
                stall_timeout_s=self._rpc_timeout_s,
                encoder=self._encoder,
            )
            self._streams[peer] = st
        return st

    def _stubs(self, peer: str) -> _PeerStubs:
        stubs = self._peer_stubs.get(peer)
        if stubs is None:
            channel = _dial(self._addresses[peer], self._credentials)
            self._channels[peer] = channel
            stubs = _PeerStubs(channel)
            self._peer_stubs[peer] = stubs
        return stubs

    @property
    def peers(self) -> dict[str, str]:
        """peers maps every peer this node sends to (dials) to its address."""
        return dict(self._addresses)

    def add_peer(self, peer: str, address: str) -> None:
        """add_peer starts sending to a new member (or one whose address changed)."""
        if self._addresses.get(peer) == address:
            return
        if peer in self._addresses:
            self.remove_peer(peer)
        self._addresses[peer] = address
        self._outstanding.setdefault(peer, 0)

    def remove_peer(self, peer: str) -> None:
        """remove_peer stops sending to a member that left and closes its link."""
        self._addresses.pop(peer, None)
        stream = self._streams.pop(peer, None)
        channel = self._channels.pop(peer, None)
        self._peer_stubs.pop(peer, None)

        async def close() -> None:
            if stream is not None:
                await stream.close()
            if channel is not None:
                await channel.close(None)

        if stream is not None or channel is not None:
            task = asyncio.get_running_loop().create_task(close())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def send(self, envelope: Envelope) -> None:
        """send starts the RPC for one outbound request and returns at once."""
        if self._closed:
            return
        peer = envelope.to
        if peer not in self._addresses:
            log.warning("dropping message to unknown peer %r", peer)
            return
        msg = envelope.message
        if self._use_stream and isinstance(msg, AppendRequest | VoteRequest | TimeoutNow):
            self._stream(peer).send(msg)
            return
        if self._outstanding[peer] >= self._max_outstanding:
            self._dropped += 1
            return
        self._outstanding[peer] += 1
        task = asyncio.get_running_loop().create_task(self._call(peer, envelope.message))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _call(self, peer: str, msg: Message) -> None:
        try:
            reply = await self._rpc(peer, msg)
        except aio.AioRpcError as err:
            log.debug("rpc to %s failed: %s", peer, err.code().name)
            reply = None
        except MalformedProtoError as exc:
            log.warning("malformed reply from %s: %s", peer, exc)
            reply = None
        except asyncio.CancelledError:
            raise
        finally:
            if peer in self._outstanding:
                self._outstanding[peer] -= 1
        if reply is not None and not self._closed:
            self._on_reply(reply)

    async def _rpc(self, peer: str, msg: Message) -> Message | None:
        stubs = self._stubs(peer)
        timeout = self._rpc_timeout_s
        match msg:
            case AppendRequest():
                pb_append = await stubs.append(append_request_to_pb(msg), timeout=timeout)
                return append_response_from_pb(pb_append) if pb_append.sender else None
            case VoteRequest():
                pb_vote = await stubs.vote(vote_request_to_pb(msg), timeout=timeout)
                return vote_response_from_pb(pb_vote) if pb_vote.sender else None
            case SnapshotRequest():
                pb_snap = await stubs.snapshot(
                    snapshot_chunks(msg), timeout=self._snapshot_timeout_s
                )
                return snapshot_response_from_pb(pb_snap) if pb_snap.sender else None
            case TimeoutNow():
                await stubs.timeout_now(timeout_now_to_pb(msg), timeout=timeout)
                return None
            case VoteResponse() | AppendResponse() | SnapshotResponse():
                # Replies travel back on the RPC that carried the request (see module doc).
                log.debug("reply %s to %s had no waiting request; dropped", type(msg), peer)
                return None
            case _:
                assert_never(msg)

    async def close(self) -> None:
        """close cancels in-flight RPCs and closes every channel."""
        self._closed = True
        streams, self._streams = self._streams, {}
        for st in streams.values():
            await st.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        channels, self._channels = self._channels, {}
        for channel in channels.values():
            await channel.close(None)
