"""Node: the asyncio driver that runs the sans-IO Raft core over gRPC and SQLite.

The driver loop is etcd's Ready loop. Each turn takes one ``core.ready()`` and
does its work in the order the Ready demands:

1. a leader starts its appends at once (Raft thesis 10.2.1: a leader may write
   its log in parallel with replication; it counts itself in the commit quorum
   only for entries reported durable with ``core.persisted``);
2. persist hard state, entries and a received snapshot with ONE storage call
   on the storage thread, so the event loop keeps accepting proposals and
   messages meanwhile; those land in the next Ready (group commit). A hard
   state that moved only the commit index is not written on its own (the
   commit index is volatile, Raft Figure 2): it rides with the next write,
   which keeps a second fsync off every commit's critical path;
3. send the remaining messages: requests go out through PeerSenders, replies
   go back on the RPC that carried the request (see _transport);
4. apply committed entries in order and resolve the proposals waiting on them;
   release ReadIndex reads once applied >= read_index;
5. obey the timer command, then ``core.advance(ready)``.

Storage runs on one dedicated worker thread (sqlite3 connections belong to the
thread that made them), which is the ``asyncio.to_thread`` pattern with the
thread pinned.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, TypeVar

from grpc import aio

from impl._config import NodeConfig
from impl._core import (
    AppendRequest,
    CoreConfig,
    Entry,
    EntryKind,
    HardState,
    Message,
    NotLeader,
    ProtocolError,
    RaftCore,
    Ready,
    Role,
    SnapshotMeta,
    SnapshotRequest,
    TimerCommand,
    TransferInProgress,
    VoteRequest,
)
from impl._kv import KVStateMachine
from impl._metrics import metrics_for
from impl._node_errors import (
    NodeStoppedError,
    NotLeaderError,
    ProposalLostError,
    TransferInProgressError,
)
from impl._node_members import Members, MembershipDriver
from impl._node_storage import open_storage
from impl._security import node_channel_credentials
from impl._statemachine import StateMachine
from impl._storage import Storage
from impl._timer import ElectionTimer
from impl._trace import TraceWriter, TracingCore, trace_path
from impl._transport import PeerSenders, build_server

__all__ = ["Node", "NodeStatus"]

log = logging.getLogger("raftwright.node")

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class NodeStatus:
    """NodeStatus is a snapshot of a node's view, cheap to take (no I/O)."""

    id: str
    address: str
    role: str
    term: int
    leader: str | None
    commit_index: int
    applied_index: int
    log_size: int
    snapshot_index: int
    peers: Mapping[str, tuple[int, int]]  # leader only: peer -> (match, next)
    # The config in use (thesis 4.1: the latest in the log, committed or not).
    voters: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    learners: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


# The reply type the core produces for each request type.
_REPLY_FOR: dict[type, str] = {
    VoteRequest: "VoteResponse",
    AppendRequest: "AppendResponse",
    SnapshotRequest: "SnapshotResponse",
}


class _Waiter:
    __slots__ = ("future", "kind", "sender")

    def __init__(self, sender: str, kind: str | None, future: asyncio.Future[Message | None]):
        self.sender = sender
        self.kind = kind
        self.future = future


class Node:
    """Node runs one Raft member: core, storage, timers, gRPC server and peer channels.

    ``await start()``; then ``propose`` / ``read`` on the leader (others raise
    NotLeaderError naming the leader); ``await stop()`` at the end.
    """

    def __init__(
        self,
        config: NodeConfig,
        state_machine: StateMachine,
        *,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self._sm = state_machine
        self.serves_kv = isinstance(state_machine, KVStateMachine)
        self._rng = rng if rng is not None else random.Random()
        self._core: RaftCore | None = None
        self._storage: Storage | None = None
        self._io = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"raftwright-io-{config.node_id}"
        )
        self._server: aio.Server | None = None
        self._senders: PeerSenders | None = None
        self._timer: ElectionTimer | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._driver: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._running = False
        self._stopping = False
        self.port = 0
        # driver bookkeeping
        self._applied = 0
        self._snapshot: tuple[SnapshotMeta, bytes] | None = None
        self._snapshot_index = 0
        self._applied_term = 0
        self._proposals: dict[int, tuple[int, asyncio.Future[bytes]]] = {}
        # Reads are handed to the core in batches: every read that arrived since the
        # driver's last turn shares one ReadIndex request (one request id, one quorum
        # round that starts after all of them arrived; thesis 6.4, as etcd batches them).
        self._read_batch: list[tuple[bytes, asyncio.Future[bytes]]] = []
        # Proposals likewise: those queued since the last turn enter the log together
        # (core.propose_many: one append per follower instead of one per proposal).
        self._propose_batch: list[tuple[bytes, asyncio.Future[bytes]]] = []
        self._reads: dict[int, list[tuple[bytes, asyncio.Future[bytes]]]] = {}
        self._released_reads: list[tuple[int, int]] = []  # (read_index, request_id)
        self._next_read_id = 0
        self._reply_waiters: list[_Waiter] = []
        # The hard state last written to storage, and the newest one the core handed out.
        self._durable_hs = HardState(0, None, 0)
        self._latest_hs: HardState | None = None
        self.failure: BaseException | None = None
        # When the next check-quorum tick is due (loop time); see _check_quorum_loop.
        self._check_quorum_due = 0.0
        self._check_quorum_period = config.election_timeout_ms[0] / 1000
        self._members = MembershipDriver(config.node_id, config.peers)

    # ------------------------------------------------------------ lifecycle

    async def _on_io(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._io, fn, *args)

    async def start(self) -> None:
        """start loads storage, restores the snapshot, and starts serving."""
        if self._running or self._stopping:
            raise RuntimeError("Node.start called twice")
        try:
            await self._start()
        except BaseException:
            # Do not leak the store, the storage thread or a half-bound server.
            await self.stop()
            raise

    async def _start(self) -> None:
        cfg = self.config
        storage, stored, snapshot = await self._on_io(open_storage, cfg)
        self._storage = metrics_for(self).wrap_storage(storage)  # times each persist
        if snapshot is not None:
            meta, data = snapshot
            self._sm.restore(data)
            self._snapshot = snapshot
            self._snapshot_index = meta.index
            self._applied = meta.index
            self._applied_term = meta.term
        core_config = CoreConfig(
            node_id=cfg.node_id,
            voters=cfg.voters,
            addresses=cfg.peers,
            join=cfg.join,
            cluster_id=cfg.cluster_id,
            max_inflight_appends=cfg.max_inflight_appends,
        )
        if cfg.trace_dir is None:
            core = RaftCore(core_config, stored)
        else:  # chosen once: a node that does not trace pays nothing per step
            writer = TraceWriter(trace_path(cfg.trace_dir, cfg.node_id))
            core = TracingCore(core_config, stored, writer)
        core.set_snapshot_source(self._snapshot_source)
        self._core = core
        self._durable_hs = core.hard_state
        self._senders = PeerSenders(
            {},  # the members of the config in use: sync_peers below
            self._on_peer_reply,
            max_outstanding=cfg.max_inflight_appends * 2 + 8,
            rpc_timeout_s=max(0.5, cfg.election_timeout_ms[1] * 4 / 1000),
            credentials=node_channel_credentials(cfg),  # TLS to peers, or None
        )
        self._members.sync_peers(core, self._senders)
        self._server, self.port = build_server(self)
        await self._server.start()
        lo, hi = cfg.election_timeout_ms
        self._timer = ElectionTimer(
            base_ms=lo, jitter_ms=hi - lo, rng=self._rng, on_fire=self._on_election_timer
        )
        self._running = True
        loop = asyncio.get_running_loop()
        self._driver = loop.create_task(self._drive(), name=f"raftwright-driver-{cfg.node_id}")
        self._tasks = [
            loop.create_task(self._every(cfg.heartbeat_ms, self._on_heartbeat)),
            loop.create_task(self._check_quorum_loop()),
        ]
        self._timer.reset()
        self._wake.set()

    async def stop(self) -> None:
        """stop shuts the node down; pending proposals and reads fail with NodeStoppedError."""
        if self._stopping:
            return
        self._stopping = True
        was_running, self._running = self._running, False
        if self._server is not None:
            await self._server.stop(0.1)
        if self._timer is not None:
            self._timer.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._driver is not None:
            self._wake.set()
            await asyncio.gather(self._driver, return_exceptions=True)
        if self._senders is not None:
            await self._senders.close()
        self._fail_all(NodeStoppedError("node stopped"))
        if isinstance(self._core, TracingCore):
            self._core.close_trace()
        if self._storage is not None:
            await self._on_io(self._storage.close)
        self._io.shutdown(wait=True)
        if was_running:
            log.info("node %s stopped", self.config.node_id)

    def _is_stopping(self) -> bool:
        # A method, not the attribute: stop() flips it while the driver awaits.
        return self._stopping

    def _fail_all(self, exc: Exception) -> None:
        for _, fut in self._proposals.values():
            if not fut.done():
                fut.set_exception(exc)
        self._proposals.clear()
        for batch in (self._propose_batch, self._read_batch, *self._reads.values()):
            for _, fut_r in batch:
                if not fut_r.done():
                    fut_r.set_exception(exc)
        self._propose_batch = []
        self._read_batch = []
        self._reads.clear()
        self._released_reads.clear()
        for w in self._reply_waiters:
            if not w.future.done():
                w.future.set_exception(exc)
        self._reply_waiters.clear()

    # ------------------------------------------------------------ queries

    def _require_core(self) -> RaftCore:
        if self._core is None or not self._running:
            raise NodeStoppedError("node is not running")
        return self._core

    @property
    def term(self) -> int:
        return self._core.term if self._core is not None else 0

    @property
    def role(self) -> Role:
        return self._core.role if self._core is not None else Role.FOLLOWER

    @property
    def leader_id(self) -> str | None:
        return self._core.leader_id if self._core is not None else None

    @property
    def applied_index(self) -> int:
        return self._applied

    @property
    def running(self) -> bool:
        return self._running

    def status(self) -> NodeStatus:
        """status reports this node's current view (no I/O)."""
        core = self._core
        cfg = self.config
        if core is None:
            return NodeStatus(cfg.node_id, cfg.address, "stopped", 0, None, 0, 0, 0, 0, {})
        peers: dict[str, tuple[int, int]] = {}
        if core.role is Role.LEADER:
            for peer, pr in core.progress.items():
                peers[peer] = (pr.match, pr.next)
        return NodeStatus(
            id=cfg.node_id,
            address=cfg.address,
            role=core.role.value if self._running else "stopped",
            term=core.term,
            leader=core.leader_id,
            commit_index=core.commit_index,
            applied_index=self._applied,
            log_size=core.last_index - core.first_index + 1,
            snapshot_index=self._snapshot_index,
            peers=peers,
            voters=self._members.current(core).voters,
            learners=self._members.current(core).learners,
        )

    # ------------------------------------------------------------ client API

    def _not_leader(self, hint: str | None) -> NotLeaderError:
        address = self._members.address_of(self._core, hint) if hint is not None else None
        return NotLeaderError(hint, address)

    def _require_writable(self) -> None:
        """_require_writable refuses a write before it is queued: not the leader, or a
        leadership transfer is on (thesis 3.10); the driver checks again when it appends."""
        core = self._require_core()
        if core.role is not Role.LEADER:
            raise self._not_leader(core.leader_id)
        if core.transfer_target is not None:
            raise TransferInProgressError(core.transfer_target)

    async def propose(self, command: bytes) -> bytes:
        """propose replicates command; returns the state machine's result once applied.

        Raises NotLeaderError (not accepted; retry at the leader),
        TransferInProgressError (not accepted: a leadership transfer is on, thesis 3.10;
        retry shortly), ProposalLostError (leadership changed; outcome unknown) or
        NodeStoppedError.
        """
        self._require_writable()
        fut: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._propose_batch.append((command, fut))
        self._wake.set()
        return await fut

    async def propose_many(self, commands: Sequence[bytes]) -> list[bytes]:
        """propose_many replicates commands together; their results in order once all applied.

        The commands join the proposal queue back to back, and the driver hands the
        whole queue to ONE ``core.propose_many``, so they take consecutive indexes in
        one append (one replication round) and are applied in order. A refusal
        (NotLeaderError or TransferInProgressError, here or when the driver appends)
        means none was appended. ProposalLostError (leadership changed after the
        append) leaves the outcome unknown, and it may differ per command: a new leader
        may keep a prefix of the batch (Raft section 5.3/5.4: it keeps what is
        committed, may drop the rest).
        """
        self._require_writable()
        if not commands:
            return []
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[bytes]] = [loop.create_future() for _ in commands]
        self._propose_batch.extend(zip(commands, futures, strict=True))
        self._wake.set()
        outcomes = await asyncio.gather(*futures, return_exceptions=True)
        results: list[bytes] = []
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
            results.append(outcome)
        return results

    def _flush_proposals(self, core: RaftCore) -> None:
        """_flush_proposals appends every proposal queued since the last turn in one go.

        A proposal that is cancelled later stays in ``_proposals`` until its index is
        applied (or the reign ends), where a done future is skipped.
        """
        batch = self._propose_batch
        if not batch:
            return
        self._propose_batch = []
        try:
            indexes = core.propose_many([command for command, _ in batch])
        except NotLeader as exc:
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(self._not_leader(exc.leader_hint))
            return
        except TransferInProgress as exc:  # queued before the transfer began (thesis 3.10)
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(TransferInProgressError(exc.target))
            return
        term = core.term
        proposals = self._proposals
        for index, (_, fut) in zip(indexes, batch, strict=True):
            proposals[index] = (term, fut)

    async def read(self, query: bytes) -> bytes:
        """read answers query linearizably (ReadIndex, Raft thesis 6.4)."""
        core = self._require_core()
        if core.role is not Role.LEADER:
            raise self._not_leader(core.leader_id)
        fut: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._read_batch.append((query, fut))
        self._wake.set()
        return await fut

    def _flush_reads(self, core: RaftCore) -> None:
        """_flush_reads hands every read queued since the last turn to the core as one request.

        Each of them arrived before this call, so the quorum round the core starts for
        it (or a later one) confirms leadership after each read arrived (thesis 6.4).
        """
        batch = self._read_batch
        if not batch:
            return
        self._read_batch = []
        self._next_read_id += 1
        request_id = self._next_read_id
        try:
            core.read_index(request_id)
        except NotLeader as exc:
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(self._not_leader(exc.leader_hint))
            return
        self._reads[request_id] = batch

    def transfer_leadership(self, to: str) -> None:
        """transfer_leadership asks the leader to hand over to ``to`` (thesis 3.10).

        Returns at once; the transfer completes when ``to`` has caught up and
        wins the election that TimeoutNow starts. Raises NotLeaderError elsewhere.
        """
        core = self._require_core()
        if to not in self._members.current(core).voters:
            raise ValueError(f"unknown node {to!r}")
        fresh = core.transfer_target is None
        try:
            core.transfer_leadership(to)
        except NotLeader as exc:
            raise self._not_leader(exc.leader_hint) from None
        if fresh and core.transfer_target is not None:
            # The leader's check-quorum tick ends a pending transfer (thesis 3.10: one
            # election timeout to complete). A tick due a few ms after the request would
            # end it before the target caught up with the writes in flight (writes are
            # refused meanwhile), so the next tick is put a full period away. Only a new
            # transfer postpones it: repeated requests cannot hold check-quorum off.
            now = asyncio.get_running_loop().time()
            due = now + self._check_quorum_period
            self._check_quorum_due = max(self._check_quorum_due, due)
        self._wake.set()

    # ------------------------------------------------------------ membership

    def add_member(self, node_id: str, address: str) -> int:
        """add_member adds node_id as a learner; the leader promotes it once caught up.

        Returns the log index of the config entry (Raft thesis 4.1, 4.2.1). Raises
        NotLeaderError, MemberExistsError, MembershipBlockedError (retry later) or
        ValueError (bad id or address); a refusal changes nothing.
        """
        try:
            return self._members.add(self._require_core(), node_id, address)
        finally:
            self._wake.set()  # a refusal may have appended a no-op of this term

    def remove_member(self, node_id: str) -> int:
        """remove_member removes a voter or learner (thesis 4.2.2: the leader may remove itself).

        Returns the config entry's index. Raises NotLeaderError, NotAMemberError,
        MembershipBlockedError (also for the last voter) or ValueError.
        """
        try:
            return self._members.remove(self._require_core(), node_id)
        finally:
            self._wake.set()  # a refusal may have appended a no-op of this term

    def members(self) -> Members:
        """members is the config in use with, on the leader, each member's match index."""
        return self._members.view(self._require_core())

    @property
    def dialed_peers(self) -> dict[str, str]:
        """dialed_peers: the peers this node sends to now (the config in use, plus leavers)."""
        return self._senders.peers if self._senders is not None else {}

    def accepts_sender(self, sender: str, from_leader: bool) -> bool:
        """accepts_sender: may the transport hand a message from sender to the core?"""
        return self._members.accepts(self._core, sender, from_leader)

    # ------------------------------------------------------------ peer inputs

    async def deliver(self, msg: Message) -> Message | None:
        """deliver feeds a peer request to the core; returns the core's reply once durable.

        Raises the core's ProtocolError subclasses unchanged (the core's state
        is unchanged then); the transport maps them to gRPC codes.
        """
        return await self.deliver_nowait(msg)

    def deliver_nowait(self, msg: Message) -> asyncio.Future[Message | None]:
        """deliver_nowait feeds msg to the core now; the future gets the reply once durable.

        Synchronous on purpose: the peer stream feeds a batch in order without
        waiting for each reply, so the batch lands in one Ready (one persist).
        Raises the core's ProtocolError subclasses (the core is unchanged then).
        """
        core = self._require_core()
        core.receive(msg)
        fut: asyncio.Future[Message | None] = asyncio.get_running_loop().create_future()
        self._reply_waiters.append(_Waiter(msg.sender, _REPLY_FOR.get(type(msg)), fut))
        self._wake.set()
        return fut

    def _on_peer_reply(self, msg: Message) -> None:
        core = self._core
        if core is None or not self._running:
            return
        try:
            core.receive(msg)
        except ProtocolError as exc:
            log.warning("%s: refused reply from %s: %s", self.config.node_id, msg.sender, exc)
            return
        self._wake.set()

    # ------------------------------------------------------------ timers

    def _on_election_timer(self) -> None:
        core = self._core
        if core is None or not self._running:
            return
        if core.role is Role.LEADER:
            # A leader's election timer is stopped, but the Ready that made us leader
            # applies its STOP only after its storage write; a fire racing that write
            # must not reach the core (it would change nothing, yet be recorded).
            return
        core.election_timeout()
        # Re-arm: if this election fails, the next timeout must retry. A Ready
        # that makes us leader carries STOP, which the driver applies after this.
        if self._timer is not None:
            self._timer.reset()
        self._wake.set()

    def _on_heartbeat(self) -> None:
        core = self._core
        if core is not None and core.role is Role.LEADER:
            core.heartbeat_timeout()
            self._wake.set()

    def _on_check_quorum(self) -> None:
        if self._core is not None:
            self._core.check_quorum_timeout()
            self._wake.set()

    async def _check_quorum_loop(self) -> None:
        """_check_quorum_loop ticks check-quorum once per period (the election timeout's low end).

        Like ``_every``, except that a new leadership transfer postpones the next tick to a
        full period after it started (see transfer_leadership), so a transfer always gets
        between one and two periods before the tick ends it.
        """
        loop = asyncio.get_running_loop()
        period = self._check_quorum_period
        self._check_quorum_due = loop.time() + period
        while self._running:
            await asyncio.sleep(max(0.0, self._check_quorum_due - loop.time()))
            now = loop.time()
            if self._running and now >= self._check_quorum_due:  # else: postponed meanwhile
                self._check_quorum_due = now + period
                self._on_check_quorum()

    async def _every(self, period_ms: int, fn: Callable[[], None]) -> None:
        period = period_ms / 1000
        while self._running:
            await asyncio.sleep(period)
            if self._running:
                fn()

    # ------------------------------------------------------------ driver loop

    async def _drive(self) -> None:
        core = self._core
        assert core is not None
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                if self._stopping:
                    return
                self._flush_proposals(core)
                self._flush_reads(core)
                while core.has_ready():
                    ready = core.ready()
                    waiters, self._reply_waiters = self._reply_waiters, []
                    await self._handle_ready(core, ready, waiters)
                    if self._is_stopping():
                        return
                    # Inside the loop: under constant load it may never drain.
                    await self._maybe_snapshot(core)
                    self._flush_proposals(core)
                    self._flush_reads(core)
                # Requests delivered since the last ready() produced no output: no reply.
                waiters, self._reply_waiters = self._reply_waiters, []
                for w in waiters:
                    if not w.future.done():
                        w.future.set_result(None)
        except Exception as exc:
            # A storage failure (or a core bug) must not leave a half-working node.
            log.exception("%s: driver failed; node stops", self.config.node_id)
            self.failure = exc
            self._running = False
            self._fail_all(NodeStoppedError(f"node failed: {exc}"))

    async def _handle_ready(self, core: RaftCore, ready: Ready, waiters: list[_Waiter]) -> None:
        senders = self._senders
        assert senders is not None and self._storage is not None
        self._members.sync_peers(core, senders)  # dial the config in use before sending
        messages = ready.messages
        early = core.role is Role.LEADER
        if early:
            rest = []
            for env in messages:
                if isinstance(env.message, AppendRequest):
                    senders.send(env)
                else:
                    rest.append(env)
            messages = tuple(rest)
        # 2. persist: one storage call per Ready (group commit). A hard state that
        # moved only the commit index is not waited for: commitIndex is volatile
        # state (Raft Figure 2; a restart recomputes it), so it rides along with the
        # next write instead of costing an fsync on every commit's critical path.
        hard = ready.hard_state
        if hard is not None:
            self._latest_hs = hard
        durable = self._durable_hs
        latest = self._latest_hs
        must_sync = ready.entries or ready.snapshot is not None
        if latest is not None and (latest.term, latest.vote) != (durable.term, durable.vote):
            must_sync = True
        if must_sync:
            to_write = latest if latest is not None and latest != durable else None
            await self._on_io(_persist, self._storage, to_write, ready.entries, ready.snapshot)
            if to_write is not None:
                self._durable_hs = to_write
            if ready.entries:
                last = ready.entries[-1]
                core.persisted(last.index, last.term)
        if ready.snapshot is not None:
            self._install_snapshot(*ready.snapshot)
        # 3. send
        for env in messages:
            msg = env.message
            kind = type(msg).__name__
            if kind in ("VoteResponse", "AppendResponse", "SnapshotResponse"):
                for i, w in enumerate(waiters):
                    if w.sender == env.to and w.kind == kind:
                        del waiters[i]
                        if not w.future.done():
                            w.future.set_result(msg)
                        break
                else:
                    log.debug("no waiting request for %s to %s; dropped", kind, env.to)
            else:
                senders.send(env)
        for w in waiters:
            if not w.future.done():
                w.future.set_result(None)
        # 4. apply and answer reads
        if ready.committed:
            self._apply(ready.committed)
            core.applied(self._applied)
        if self._proposals and core.role is not Role.LEADER:
            self._fail_proposals_of_lost_reign()
        for rs in ready.reads:
            self._released_reads.append((rs.read_index, rs.request_id))
        for request_id in ready.aborted_reads:
            for _, fut_a in self._reads.pop(request_id, ()):
                if not fut_a.done():
                    fut_a.set_exception(self._not_leader(core.leader_id))
        if self._released_reads:
            self._answer_reads()
        # 5. timer, advance
        timer = self._timer
        if timer is not None:
            match ready.timer:
                case TimerCommand.RESET:
                    timer.reset()
                case TimerCommand.STOP:
                    timer.stop()
                case None:
                    pass
        core.advance(ready)
        # Membership (thesis 4.2.1): promote the learners that caught up.
        self._members.promote_caught_up(core)

    def _fail_proposals_of_lost_reign(self) -> None:
        """_fail_proposals_of_lost_reign answers every proposal still waiting when we stop leading.

        A deposed leader's uncommitted tail may be overwritten by the next leader, or never be
        reached by the commit index at all; waiting for it would hang the caller. Like etcd's
        "leader changed" error, the outcome is unknown (a later leader may still commit the
        entry), so only a de-duplicated command (the KV client's) may be retried.
        """
        proposals, self._proposals = self._proposals, {}
        for _term, fut in proposals.values():
            if not fut.done():
                fut.set_exception(
                    ProposalLostError("leadership changed before the proposal committed")
                )

    def _install_snapshot(self, meta: SnapshotMeta, data: bytes) -> None:
        """_install_snapshot restores a snapshot the leader sent (section 7)."""
        self._sm.restore(data)
        self._snapshot = (meta, data)
        self._snapshot_index = meta.index
        self._applied = max(self._applied, meta.index)
        self._applied_term = meta.term
        lost = [i for i in self._proposals if i <= meta.index]
        for i in lost:
            _, fut = self._proposals.pop(i)
            if not fut.done():
                fut.set_exception(ProposalLostError("replaced by a leader snapshot"))

    def _apply(self, committed: tuple[Entry, ...]) -> None:
        sm = self._sm
        proposals = self._proposals
        applied = self._applied
        for entry in committed:
            index = entry.index
            if index <= applied:
                continue
            result = b""
            error: Exception | None = None
            if entry.kind is EntryKind.NORMAL:
                try:
                    result = sm.apply(entry.data)
                except Exception as exc:
                    log.exception("state machine failed on entry %d", index)
                    error = exc
            applied = index
            self._applied_term = entry.term
            waiting = proposals.pop(index, None) if proposals else None
            if waiting is not None:
                term, fut = waiting
                if fut.done():
                    continue
                if term != entry.term:
                    fut.set_exception(ProposalLostError("a new leader overwrote the proposal"))
                elif error is not None:
                    fut.set_exception(error)
                else:
                    fut.set_result(result)
        self._applied = applied

    def _answer_reads(self) -> None:
        applied = self._applied
        keep: list[tuple[int, int]] = []
        for read_index, request_id in self._released_reads:
            if read_index > applied:
                keep.append((read_index, request_id))
                continue
            query_fn = self._sm.query
            for query, fut in self._reads.pop(request_id, ()):
                if fut.done():
                    continue  # the caller gave up (cancelled)
                try:
                    fut.set_result(query_fn(query))
                except Exception as exc:
                    fut.set_exception(exc)
        self._released_reads = keep

    async def _maybe_snapshot(self, core: RaftCore) -> None:
        """_maybe_snapshot compacts the log every snapshot_every applied entries (section 7)."""
        if self._applied - self._snapshot_index < self.config.snapshot_every:
            return
        assert self._storage is not None
        meta = core.snapshot_meta(self._applied)  # with the config in use there (4.1)
        data = self._sm.snapshot()
        await self._on_io(self._storage.save_snapshot, meta, data)
        self._snapshot = (meta, data)
        self._snapshot_index = meta.index
        core.snapshot_taken(meta)

    def _snapshot_source(self) -> tuple[SnapshotMeta, bytes]:
        if self._snapshot is None:
            raise LookupError("no snapshot taken yet")
        return self._snapshot


def _persist(
    storage: Storage,
    hard_state: HardState | None,
    entries: tuple[Entry, ...],
    snapshot: tuple[SnapshotMeta, bytes] | None,
) -> None:
    """_persist runs on the storage thread: snapshot first, then hard state and entries."""
    if snapshot is not None:
        storage.save_snapshot(*snapshot)
    if hard_state is not None or entries:
        storage.save(hard_state, entries)
