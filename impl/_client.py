"""RaftClient and KVClient: talk to a raftwright cluster from asyncio code.

The client knows a list of node addresses, not which one leads. It sends to
the last leader it saw (or the first address), follows the not-leader redirect
that nodes put in the trailing metadata (`raftwright-leader-addr`), moves on
to the next address when a node is down, and backs off exponentially between
full rounds, all within one overall deadline. When the deadline passes without
an answer it raises NoLeaderError saying what it saw last.

Retries and exactly-once: a retry after an ambiguous failure (timeout, lost
leadership) may re-send a command that was in fact committed. RaftClient.propose
is therefore at-least-once; KVClient makes writes exactly-once by tagging
each with (client_id, sequence), reusing the sequence on every retry, and the
replicated KV state machine de-duplicates them.

Batches (ProposeBatch): RaftClient.propose_many never re-sends a batch that may
have been appended. It moves on only after an answer that guarantees nothing
was appended (FAILED_PRECONDITION: not the leader; a refusal marked with the
trailing metadata ``raftwright-not-appended``: a leadership transfer is on) or
when the node could not be reached before the call was sent (the channel never
became ready); any
other failure raises ClientError, whose outcome is unknown. KVClient.put_many
may re-send, because each put in it carries its own sequence and the dedup
table applies a re-sent batch once.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import grpc
from grpc import aio

from impl._config import parse_address
from impl._kv import encode_put
from impl._security import TlsConfig, channel_credentials, load_tls
from impl.generated import client_pb2, client_pb2_grpc, kv_pb2, kv_pb2_grpc

__all__ = [
    "LEADER_ADDR_KEY",
    "LEADER_ID_KEY",
    "NOT_APPENDED_KEY",
    "ClientError",
    "KVClient",
    "NoLeaderError",
    "NodeStatusReport",
    "RaftClient",
]

LEADER_ID_KEY = "raftwright-leader"
LEADER_ADDR_KEY = "raftwright-leader-addr"
# Trailing metadata on a ProposeBatch refusal that guarantees nothing was appended
# (beside FAILED_PRECONDITION, which always does): the batch may go elsewhere.
NOT_APPENDED_KEY = "raftwright-not-appended"

T = TypeVar("T")

# A batch moves on to another node only after these (nothing was appended).
_BATCH_RETRYABLE = frozenset({grpc.StatusCode.FAILED_PRECONDITION})


class _NotSentError(Exception):
    """_NotSentError: the node was not reachable, so the call was never sent (safe to move on)."""


async def _ready(channel: aio.Channel, timeout: float) -> bool:
    """_ready waits until channel is connected; False when it fails or times out first."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    state = channel.get_state(try_to_connect=True)
    while state is not grpc.ChannelConnectivity.READY:
        remaining = deadline - loop.time()
        if state is grpc.ChannelConnectivity.TRANSIENT_FAILURE or remaining <= 0:
            return False
        try:
            await asyncio.wait_for(channel.wait_for_state_change(state), remaining)
        except TimeoutError:
            return False
        state = channel.get_state(try_to_connect=True)
    return True


# Status codes after which another node (or the same one later) may succeed.
_RETRYABLE = frozenset(
    {
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.CANCELLED,
    }
)


class ClientError(Exception):
    """ClientError: the cluster answered with a non-retryable error."""


class NoLeaderError(ClientError):
    """NoLeaderError: no leader answered before the deadline."""


@dataclass(frozen=True, slots=True)
class NodeStatusReport:
    """NodeStatusReport is one node's Status answer, or why it gave none."""

    address: str
    status: client_pb2.StatusResponse | None
    error: str | None


def _not_appended(err: aio.AioRpcError) -> bool:
    pairs = cast("Iterable[tuple[str, str | bytes]]", err.trailing_metadata() or ())
    return any(key == NOT_APPENDED_KEY and value == "1" for key, value in pairs)


def _leader_addr(err: aio.AioRpcError) -> str | None:
    # grpc.aio returns an aio.Metadata, which iterates as (key, value) pairs.
    pairs = cast("Iterable[tuple[str, str | bytes]]", err.trailing_metadata())
    for key, value in pairs:
        if key == LEADER_ADDR_KEY and isinstance(value, str) and value:
            return value
    return None


class RaftClient:
    """RaftClient sends proposals, reads and status requests to a cluster.

    Use as ``async with RaftClient(["127.0.0.1:7001", ...]) as c: await c.propose(b"x")``.
    With ``tls=TlsConfig(ca=...)`` the channels speak TLS and verify the nodes
    against that CA; add cert and key for clusters that require mutual TLS.
    The files are read and checked here (ConfigError when they are wrong).
    """

    def __init__(
        self,
        addresses: Sequence[str],
        *,
        deadline_s: float = 10.0,
        rpc_timeout_s: float = 3.0,
        backoff_initial_s: float = 0.02,
        backoff_max_s: float = 0.5,
        tls: TlsConfig | None = None,
    ) -> None:
        if not addresses:
            raise ValueError("RaftClient needs at least one address")
        for address in addresses:
            parse_address(address)
        self._addresses = list(dict.fromkeys(addresses))
        self._deadline_s = deadline_s
        self._rpc_timeout_s = rpc_timeout_s
        self._backoff_initial_s = backoff_initial_s
        self._backoff_max_s = backoff_max_s
        self._channels: dict[str, aio.Channel] = {}
        self._stubs: dict[aio.Channel, client_pb2_grpc.RaftClientAsyncStub] = {}
        self._leader: str | None = None
        self._rng = random.Random()
        self._credentials = channel_credentials(load_tls(tls)) if tls is not None else None

    @property
    def addresses(self) -> list[str]:
        return list(self._addresses)

    @property
    def leader_address(self) -> str | None:
        """The address of the last node that answered as leader."""
        return self._leader

    async def __aenter__(self) -> RaftClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        channels, self._channels = self._channels, {}
        self._stubs = {}
        for channel in channels.values():
            await channel.close(None)

    def channel(self, address: str) -> aio.Channel:
        """channel returns the (cached) channel to one node."""
        channel = self._channels.get(address)
        if channel is None:
            if self._credentials is None:
                channel = aio.insecure_channel(address)
            else:
                channel = aio.secure_channel(address, self._credentials)
            self._channels[address] = channel
        return channel

    def _stub(self, channel: aio.Channel) -> client_pb2_grpc.RaftClientAsyncStub:
        """_stub: one stub per channel (building one per call cost the client ~40 us)."""
        stub = self._stubs.get(channel)
        if stub is None:
            stub = self._stubs[channel] = client_pb2_grpc.RaftClientStub(channel)
        return stub

    async def call_leader(
        self,
        fn: Callable[[aio.Channel, float], Awaitable[T]],
        *,
        retryable: frozenset[grpc.StatusCode] = _RETRYABLE,
    ) -> T:
        """call_leader runs fn(channel, timeout) against the leader, with redirects and retries.

        fn must be safe to call again after the status codes in ``retryable``
        (the retry rules of the module docstring); a _NotSentError from fn always
        moves on to the next node.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._deadline_s
        backoff = self._backoff_initial_s
        last_error = "no node tried"
        order = list(self._addresses)
        if self._leader is not None and self._leader in order:
            order.remove(self._leader)
            order.insert(0, self._leader)
        queue = list(order)
        while True:
            now = loop.time()
            if now >= deadline:
                raise NoLeaderError(
                    f"no leader reachable within {self._deadline_s:.1f}s (last: {last_error})"
                )
            if not queue:
                # A full round failed: back off (with jitter) before the next one.
                sleep = min(backoff, deadline - now) * (0.5 + self._rng.random() / 2)
                await asyncio.sleep(sleep)
                backoff = min(backoff * 2, self._backoff_max_s)
                queue = list(order)
                if self._leader is not None and self._leader in queue:
                    queue.remove(self._leader)
                    queue.insert(0, self._leader)
                continue
            address = queue.pop(0)
            timeout = max(0.05, min(self._rpc_timeout_s, deadline - loop.time()))
            try:
                result = await fn(self.channel(address), timeout)
            except _NotSentError as err:
                last_error = f"{address}: not reachable ({err})"
                if self._leader == address:
                    self._leader = None
                continue
            except aio.AioRpcError as err:
                code = err.code()
                if code not in retryable:
                    raise ClientError(f"{address}: {code.name}: {err.details()}") from err
                last_error = f"{address}: {code.name}: {err.details()}"
                if self._leader == address:
                    self._leader = None
                if code == grpc.StatusCode.FAILED_PRECONDITION:
                    hint = _leader_addr(err)
                    if hint is not None and hint != address:
                        if hint not in order:
                            order.append(hint)
                        if hint in queue:
                            queue.remove(hint)
                        queue.insert(0, hint)
                    elif hint is None:
                        # The node knows no leader yet (an election is on): wait a bit.
                        await asyncio.sleep(min(backoff, max(0.0, deadline - loop.time())))
                continue
            self._leader = address
            return result

    async def propose(self, command: bytes) -> bytes:
        """propose replicates command and returns what the state machine's apply returned."""

        async def call(channel: aio.Channel, timeout: float) -> bytes:
            stub = self._stub(channel)
            resp = await stub.Propose(client_pb2.ProposeRequest(command=command), timeout=timeout)
            return resp.result

        return await self.call_leader(call)

    async def propose_many(self, commands: Sequence[bytes]) -> list[bytes]:
        """propose_many replicates commands in one ProposeBatch call; their results in order.

        The commands are appended together and applied in order (one replication
        round). A batch over the server's caps (impl/_batch_service.py) is refused
        whole with INVALID_ARGUMENT (ClientError). Never re-sent once it may have
        been appended (module docstring): a ClientError after the call reached the
        leader means the outcome is unknown.
        """
        request = client_pb2.ProposeBatchRequest(commands=commands)

        async def call(channel: aio.Channel, timeout: float) -> list[bytes]:
            if not await _ready(channel, timeout):
                raise _NotSentError("no connection")
            stub = self._stub(channel)
            try:
                resp = await stub.ProposeBatch(request, timeout=timeout)
            except aio.AioRpcError as err:
                if _not_appended(err):  # refused whole (a leadership transfer is on)
                    raise _NotSentError(f"{err.code().name}: {err.details()}") from err
                raise
            return list(resp.results)

        return await self.call_leader(call, retryable=_BATCH_RETRYABLE)

    async def read(self, query: bytes) -> bytes:
        """read answers query linearizably (ReadIndex on the leader)."""

        async def call(channel: aio.Channel, timeout: float) -> bytes:
            stub = self._stub(channel)
            resp = await stub.Read(client_pb2.ReadRequest(query=query), timeout=timeout)
            return resp.result

        return await self.call_leader(call)

    async def transfer_leadership(self, to: str) -> client_pb2.TransferLeadershipResponse:
        """transfer_leadership asks the leader to hand over to ``to``; returns once it started."""

        async def call(
            channel: aio.Channel, timeout: float
        ) -> client_pb2.TransferLeadershipResponse:
            stub = client_pb2_grpc.RaftClientStub(channel)
            return await stub.TransferLeadership(
                client_pb2.TransferLeadershipRequest(to=to), timeout=timeout
            )

        return await self.call_leader(call)

    async def _change_members(self, send: Callable[[Any, float], Awaitable[int]]) -> int:
        """_change_members runs a membership change at the leader (retrying ABORTED).

        ABORTED means the rules block the change right now (an earlier change is
        still uncommitted, a new leader has not committed an entry of its term):
        it is retried until the deadline, and then reported with the node's reason
        (not as "no leader"), since a leader did answer.
        """
        refused: list[str] = []

        async def call(channel: aio.Channel, timeout: float) -> int:
            try:
                return await send(client_pb2_grpc.RaftClientStub(channel), timeout)
            except aio.AioRpcError as err:
                if err.code() == grpc.StatusCode.ABORTED:
                    refused.append(err.details() or "refused")
                raise

        try:
            return await self.call_leader(call)
        except NoLeaderError:
            if refused:
                raise ClientError(f"membership change refused: {refused[-1]}") from None
            raise

    async def add_member(self, node_id: str, address: str) -> int:
        """add_member adds node_id (HOST:PORT address) as a learner; returns the entry index.

        The leader promotes it to voter once it has caught up (Raft thesis 4.2.1).
        """
        request = client_pb2.AddMemberRequest(member=client_pb2.Member(id=node_id, address=address))

        async def send(stub: Any, timeout: float) -> int:
            resp = await stub.AddMember(request, timeout=timeout)
            return int(resp.index)

        return await self._change_members(send)

    async def remove_member(self, node_id: str) -> int:
        """remove_member removes a voter or learner; returns the config entry's index."""
        request = client_pb2.RemoveMemberRequest(id=node_id)

        async def send(stub: Any, timeout: float) -> int:
            resp = await stub.RemoveMember(request, timeout=timeout)
            return int(resp.index)

        return await self._change_members(send)

    async def list_members(self, timeout_s: float = 1.0) -> client_pb2.ListMembersResponse:
        """list_members is the config in use, preferably as the leader sees it (match indexes).

        Any node answers from the config it uses; when the first node that answers
        names a leader, the leader is asked too and its answer wins.
        """
        last_error = "no node answered"
        for address in self._addresses:
            try:
                stub = client_pb2_grpc.RaftClientStub(self.channel(address))
                resp = await stub.ListMembers(client_pb2.ListMembersRequest(), timeout=timeout_s)
            except aio.AioRpcError as err:
                last_error = f"{address}: {err.code().name}: {err.details()}"
                continue
            leader_addr = next(
                (m.member.address for m in resp.members if m.member.id == resp.leader), None
            )
            if leader_addr and leader_addr != address:
                try:
                    stub = client_pb2_grpc.RaftClientStub(self.channel(leader_addr))
                    return await stub.ListMembers(
                        client_pb2.ListMembersRequest(), timeout=timeout_s
                    )
                except aio.AioRpcError:
                    pass  # the leader is not reachable from here: this node's view
            return resp
        raise NoLeaderError(f"no node answered ListMembers ({last_error})")

    async def status(self, address: str, timeout_s: float = 1.0) -> client_pb2.StatusResponse:
        """status asks ONE node for its status (raises AioRpcError when it is down)."""
        stub = client_pb2_grpc.RaftClientStub(self.channel(address))
        return await stub.Status(client_pb2.StatusRequest(), timeout=timeout_s)

    async def status_all(self, timeout_s: float = 1.0) -> list[NodeStatusReport]:
        """status_all asks every node at once; unreachable nodes are reported, not raised."""

        async def one(address: str) -> NodeStatusReport:
            try:
                return NodeStatusReport(address, await self.status(address, timeout_s), None)
            except aio.AioRpcError as err:
                return NodeStatusReport(address, None, f"{err.code().name}: {err.details()}")

        return list(await asyncio.gather(*(one(a) for a in self._addresses)))


class KVClient:
    """KVClient is the client of the replicated KV store (kv.proto KeyValue service).

    Writes are exactly-once: each carries this client's random client_id and a
    fresh sequence number that every retry reuses. The dedup table remembers
    only the last sequence per client, so one KVClient sends its writes one at
    a time (an internal lock); for parallel writes use several KVClients.
    """

    def __init__(
        self, addresses: Sequence[str], *, tls: TlsConfig | None = None, **options: float
    ) -> None:
        self._raft = RaftClient(addresses, tls=tls, **options)
        self.client_id = uuid.uuid4().hex
        self._sequence = 0
        self._write_lock = asyncio.Lock()

    async def __aenter__(self) -> KVClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._raft.close()

    @property
    def raft(self) -> RaftClient:
        return self._raft

    def _next_sequence(self) -> int:
        self._sequence += 1
        return self._sequence

    async def put(self, key: str, value: bytes) -> None:
        """put sets key to value once committed."""
        async with self._write_lock:
            request = kv_pb2.PutRequest(
                key=key, value=value, client_id=self.client_id, sequence=self._next_sequence()
            )

            async def call(channel: aio.Channel, timeout: float) -> None:
                await kv_pb2_grpc.KeyValueStub(channel).Put(request, timeout=timeout)

            await self._raft.call_leader(call)

    async def put_many(self, items: Sequence[tuple[str, bytes]]) -> None:
        """put_many sets every (key, value) in one ProposeBatch call, in order, once committed.

        Each put has its own sequence, so a re-sent batch is applied once (the
        dedup table keeps the last sequence per client, and a batch is appended
        whole): the batch follows the same retry rules as ``put``. Needs a node
        whose state machine is the KV store (the commands are kv.proto KvCommands).
        """
        if not items:
            return
        async with self._write_lock:
            request = client_pb2.ProposeBatchRequest(
                commands=[
                    encode_put(key, value, self.client_id, self._next_sequence())
                    for key, value in items
                ]
            )

            async def call(channel: aio.Channel, timeout: float) -> None:
                await self._raft._stub(channel).ProposeBatch(request, timeout=timeout)

            await self._raft.call_leader(call)

    async def get(self, key: str) -> bytes | None:
        """get reads key linearizably; None when it is missing."""
        request = kv_pb2.GetRequest(key=key)

        async def call(channel: aio.Channel, timeout: float) -> bytes | None:
            resp = await kv_pb2_grpc.KeyValueStub(channel).Get(request, timeout=timeout)
            return resp.value if resp.found else None

        return await self._raft.call_leader(call)

    async def delete(self, key: str) -> bool:
        """delete removes key; returns whether it existed."""
        async with self._write_lock:
            request = kv_pb2.DeleteRequest(
                key=key, client_id=self.client_id, sequence=self._next_sequence()
            )

            async def call(channel: aio.Channel, timeout: float) -> bool:
                resp = await kv_pb2_grpc.KeyValueStub(channel).Delete(request, timeout=timeout)
                return resp.existed

            return await self._raft.call_leader(call)
