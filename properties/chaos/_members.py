"""The membership nemesis: leadership transfers and membership changes as faults.

It runs beside the fault injector (so a transfer or a change may meet a partition, message
loss or a killed node) on its own seeded schedule, so the fault schedule of a seed is the
same whether it runs or not.

Actions (one at a time, each bounded in time):

- **transfer** (thesis 3.10): ask the leader to hand leadership to a random other member
  (TransferLeadership), then watch whether that member becomes leader in a later term.
  Only those count as ``transfers``; a transfer the faults defeat is still a fault.
- **add** (thesis 4.1, 4.2.1): start a new node with ``--join`` (no configuration), ask the
  leader to add it (AddMember: it joins as a learner and the leader promotes it once it has
  caught up), and wait until it is a voter of a committed configuration.
- **readd**: the same for a machine whose node was removed earlier, with a fresh data
  directory and, by default, a new member id (``n2`` comes back as ``n2.2``): a server that
  lost its disk must not rejoin under its old id, whose votes it has forgotten (it could
  vote twice in a term; etcd refuses a removed member id for the same reason). With
  ``readd_same_id`` it comes back as ``n2`` with a blank store, which trace conformance
  refuses as a restart that lost its durable state.
- **remove the leader** (thesis 4.2.2: it leads until the configuration without it commits,
  then steps down) or **remove** a follower, alternately, the leader first; once the
  removal has committed the node is stopped for good.

The voter count stays within [``min_voters``, ``max_voters``]: at the lower bound the next
change is an addition, at the upper bound a removal, and in between additions and removals
alternate (after a change that took effect; one the faults defeated is tried again, up to
``change_retries`` extra attempts per run), so a run whose first two changes take effect has
one of each. A change that does not take effect prints every member's view (role, term,
leader, commit, log, voters, the leader's match indexes). After every change the
harness asks the leader for the committed configuration and makes its own view agree (a
change whose answer was lost may have happened anyway), then hands the new address list to
the workload.
"""

from __future__ import annotations

import asyncio
import enum
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from grpc import aio

from impl import ClientError, RaftClient
from impl.generated import client_pb2, client_pb2_grpc

from ._faults import sleep_unless_stopped
from ._procs import ChaosCluster

__all__ = ["MemberAction", "MemberNemesis", "MemberOp", "MemberRecord", "member_schedule"]


class MemberOp(enum.Enum):
    TRANSFER = "transfer"
    ADD = "add"
    READD = "readd"
    REMOVE = "remove"
    REMOVE_LEADER = "remove_leader"


@dataclass(frozen=True, slots=True)
class MemberAction:
    """MemberAction: a transfer or a change (which change is decided when it runs)."""

    change: bool
    pick: int
    gap_s: float


@dataclass(frozen=True, slots=True)
class MemberRecord:
    """MemberRecord: what the nemesis did, to whom, whether it took effect, and when."""

    op: MemberOp
    node: str
    ok: bool
    detail: str
    start: float
    end: float


def member_schedule(
    seed: int, transfers: int, changes: int, *, mean_gap_s: float = 2.0
) -> list[MemberAction]:
    """member_schedule: ``transfers`` transfers and ``changes`` changes in a seeded order."""
    rng = random.Random(seed ^ 0x3E3B)
    kinds = [False] * transfers + [True] * changes
    rng.shuffle(kinds)
    return [
        MemberAction(
            change=change,
            pick=rng.randrange(1 << 16),
            gap_s=round(rng.uniform(0.5, 1.5) * mean_gap_s, 3),
        )
        for change in kinds
    ]


@dataclass(frozen=True, slots=True)
class _Config:
    voters: dict[str, str]
    learners: dict[str, str]
    committed: bool
    leader: str
    from_leader: bool  # the answer came from the leader itself, not a follower's view


class MemberNemesis:
    """MemberNemesis runs a member schedule against a ChaosCluster."""

    def __init__(
        self,
        cluster: ChaosCluster,
        actions: list[MemberAction],
        say: Callable[[str], None],
        on_members: Callable[[list[str]], None],
        *,
        min_voters: int = 3,
        max_voters: int = 5,
        wait_s: float = 12.0,
        readd_same_id: bool = False,
        change_retries: int = 2,
    ) -> None:
        self.cluster = cluster
        self.actions = actions
        self.records: list[MemberRecord] = []
        self._say = say
        self._on_members = on_members
        self.min_voters = min_voters
        self.max_voters = max_voters
        self.wait_s = wait_s
        self.readd_same_id = readd_same_id
        self.change_retries = change_retries  # extra attempts, per run, at a defeated change
        self._last_change: MemberOp | None = None
        self._next_id = len(cluster.ids) + 1
        self._removals = 0
        self.stop = asyncio.Event()

    @property
    def transfers(self) -> int:
        return sum(1 for r in self.records if r.op is MemberOp.TRANSFER and r.ok)

    @property
    def added(self) -> int:
        return sum(1 for r in self.records if r.op in (MemberOp.ADD, MemberOp.READD) and r.ok)

    @property
    def removed(self) -> int:
        return sum(
            1 for r in self.records if r.op in (MemberOp.REMOVE, MemberOp.REMOVE_LEADER) and r.ok
        )

    async def _sleep(self, seconds: float) -> bool:
        return await sleep_unless_stopped(self.stop, seconds)

    async def run(self) -> None:
        pending = list(self.actions)
        retries = self.change_retries
        while pending:
            action = pending.pop(0)
            if await self._sleep(action.gap_s):
                return
            start = time.monotonic()
            try:
                if action.change:
                    op, node, ok, detail = await self._change(action.pick)
                else:
                    op, node, ok, detail = MemberOp.TRANSFER, *await self._transfer(action.pick)
            except Exception as exc:  # a failed action is evidence, never a harness crash
                op, node, ok, detail = (
                    MemberOp.TRANSFER if not action.change else MemberOp.ADD,
                    "?",
                    False,
                    f"harness error {exc!r}",
                )
            record = MemberRecord(op, node, ok, detail, start, time.monotonic())
            self.records.append(record)
            self._say(f"nemesis: {op.value} {node}: {'ok' if ok else 'no'} ({detail})")
            if action.change and not ok and not self.stop.is_set():
                try:
                    self._say(await self._views())
                except Exception as exc:  # evidence, never a harness crash
                    self._say(f"  member views unavailable: {exc!r}")
                if retries > 0:  # as an operator would: once more (direction: the config then)
                    retries -= 1
                    pending.insert(0, action)
            if action.change:
                await self._reconcile()

    # ---------------------------------------------------------------- helpers

    async def _views(self) -> str:
        """_views is every member's own view, a line each: the evidence for a change that
        did not take effect (who led, in which term, how far each log and commit got)."""
        cluster = self.cluster
        lines = ["  node   role          term  leader  commit  applied  log  voters"]
        async with RaftClient(cluster.client_addresses) as client:
            for node in list(cluster.ids):
                try:
                    st = await client.status(cluster.address(node), 1.0)
                except aio.AioRpcError as err:
                    lines.append(f"  {node:<6} no answer: {err.code().name}")
                    continue
                peers = " ".join(f"{p.id}:{p.match_index}" for p in st.peers)
                lines.append(
                    f"  {node:<6} {st.role:<12} {st.term:>5}  {st.leader or '-':<6} "
                    f"{st.commit_index:>7} {st.applied_index:>8} {st.log_size:>4}  "
                    f"{','.join(sorted(st.members))}" + (f"  match {peers}" if peers else "")
                )
        return "\n".join(lines)

    def _client(self, deadline_s: float) -> RaftClient:
        return RaftClient(self.cluster.client_addresses, deadline_s=deadline_s, rpc_timeout_s=1.0)

    async def _config(self, client: RaftClient) -> _Config:
        """_config asks every member for the configuration it uses; the leader's answer wins.

        ListMembers answers on any node, but only the leader's view is current (a follower
        may not have seen the latest change, and a removed node knows no leader at all), so
        the answer used is one from a node that names itself as leader (the latest config
        if two do, an old leader not yet deposed among them); else any, marked as such.
        """

        async def ask(node: str) -> tuple[str, client_pb2.ListMembersResponse | None]:
            stub = client_pb2_grpc.RaftClientStub(client.channel(self.cluster.address(node)))
            try:
                resp: client_pb2.ListMembersResponse = await stub.ListMembers(
                    client_pb2.ListMembersRequest(), timeout=1.0
                )
            except aio.AioRpcError:
                return node, None
            return node, resp

        answers = await asyncio.gather(*(ask(n) for n in self.cluster.ids))
        got = [(n, r) for n, r in answers if r is not None]
        if not got:
            raise ClientError("no member answered ListMembers")
        leaders = [(r.config_index, n, r) for n, r in got if r.leader == n]
        if leaders:
            _, _, resp = max(leaders, key=lambda t: (t[0], t[1]))
        else:
            resp = got[0][1]
        voters = {m.member.id: m.member.address for m in resp.members if m.voter}
        learners = {m.member.id: m.member.address for m in resp.members if not m.voter}
        return _Config(voters, learners, resp.committed, resp.leader, bool(leaders))

    def _waited(self) -> str:
        """_waited says how a wait for a change ended: its time ran out, or the run did."""
        return "when the run ended" if self.stop.is_set() else f"after {self.wait_s:.0f}s"

    async def _wait_config(
        self, done: Callable[[_Config], bool], seconds: float
    ) -> tuple[bool, _Config | None]:
        deadline = time.monotonic() + seconds
        last: _Config | None = None
        async with self._client(2.0) as client:
            while time.monotonic() < deadline and not self.stop.is_set():
                try:
                    last = await self._config(client)
                except (ClientError, aio.AioRpcError):
                    await asyncio.sleep(0.2)
                    continue
                if last.from_leader and last.committed and done(last):
                    return True, last
                await asyncio.sleep(0.15)
        return False, last

    async def _reconcile(self) -> None:
        """_reconcile makes the harness's members those of the committed configuration."""
        ok, cfg = await self._wait_config(lambda c: bool(c.voters), 5.0)
        if not ok or cfg is None:
            return
        actual = set(cfg.voters) | set(cfg.learners)
        cluster = self.cluster
        for node in list(cluster.ids):
            if node not in actual:
                self._say(f"nemesis: {node} is not in the committed configuration; stopping it")
                cluster.retire(node)
        for node in sorted(actual - set(cluster.ids)):
            if node in cluster.ports:  # a removal that did not take effect after all
                self._say(f"nemesis: {node} is still a member; running it again")
                cluster.ids.append(node)
                cluster.start(node)
        self._on_members(cluster.client_addresses)

    # ---------------------------------------------------------------- transfer

    async def _transfer(self, pick: int) -> tuple[str, bool, str]:
        cluster = self.cluster
        leader = await cluster.wait_for_leader(3.0)
        if leader is None:
            return "-", False, "no leader to ask within 3 s"
        others = [n for n in cluster.ids if n != leader]
        if not others:
            return "-", False, "no other member"
        target = others[pick % len(others)]
        try:
            async with RaftClient(
                [cluster.address(leader)], deadline_s=2.0, rpc_timeout_s=1.0
            ) as client:
                reply = await client.transfer_leadership(target)
        except ClientError as exc:
            return target, False, f"refused by {leader}: {exc}"
        first = reply.term
        deadline = time.monotonic() + 4.0
        asked = time.monotonic()
        async with RaftClient([cluster.address(target)]) as probe:
            while time.monotonic() < deadline and not self.stop.is_set():
                try:
                    st = await probe.status(cluster.address(target), 0.5)
                except aio.AioRpcError:
                    st = None
                if st is not None and st.role == "leader" and st.term > first:
                    return target, True, f"{leader} -> {target}, term {first} -> {st.term}"
                if time.monotonic() - asked > 1.2:
                    # The leader drops a transfer that has not finished within an election
                    # timeout (as ``raftwright transfer`` does, ask once more).
                    asked = time.monotonic()
                    try:
                        async with RaftClient(
                            cluster.client_addresses, deadline_s=1.0, rpc_timeout_s=0.5
                        ) as again:
                            await again.transfer_leadership(target)
                    except ClientError:
                        pass
                await asyncio.sleep(0.05)
        return target, False, f"{leader} accepted in term {reply.term}; {target} did not lead"

    # ---------------------------------------------------------------- changes

    async def _change(self, pick: int) -> tuple[MemberOp, str, bool, str]:
        members = len(self.cluster.ids)
        if members <= self.min_voters:
            adding = True
        elif members >= self.max_voters:
            adding = False
        else:
            adding = self._last_change in (MemberOp.REMOVE, MemberOp.REMOVE_LEADER)
        if adding:
            retired = list(self.cluster.retired)
            if retired and pick % 2 == 0:
                old = retired[pick % len(retired)]
                op, node = MemberOp.READD, old
                if not self.readd_same_id:
                    machine = old.split(".")[0]
                    n = 2
                    while f"{machine}.{n}" in self.cluster.ports:
                        n += 1
                    node = f"{machine}.{n}"
                    self.cluster.retired.remove(old)  # that id never comes back
            else:
                op, node = MemberOp.ADD, f"n{self._next_id}"
                self._next_id += 1
            ok, detail = await self._add(node)
        else:
            leader = await self.cluster.wait_for_leader(3.0)
            # Removals alternate, the leader first (thesis 4.2.2's harder case), then a follower.
            if leader is not None and self._removals % 2 == 0:
                op, node = MemberOp.REMOVE_LEADER, leader
            else:
                followers = [n for n in self.cluster.ids if n != leader]
                op, node = MemberOp.REMOVE, followers[pick % len(followers)]
            ok, detail = await self._remove(node)
            if ok:
                self._removals += 1
        if ok:  # a change the faults defeated is tried again in the same direction
            self._last_change = op
        return op, node, ok, detail

    async def _add(self, node: str) -> tuple[bool, str]:
        cluster = self.cluster
        await cluster.add_node(node)
        cluster.start(node)
        self._on_members(cluster.client_addresses)
        index: int | str = "?"
        try:
            async with self._client(self.wait_s) as client:
                index = await client.add_member(node, cluster.peer_address(node))
        except ClientError as exc:
            if "ALREADY_EXISTS" not in str(exc):  # an earlier attempt got through: fine
                return False, f"AddMember failed: {exc}"
        ok, cfg = await self._wait_config(lambda c: node in c.voters, self.wait_s)
        if ok:
            return True, f"config index {index}, voter; voters {sorted(cfg.voters) if cfg else []}"
        where = "learner" if cfg is not None and node in cfg.learners else "not a voter"
        return False, f"config index {index}; still {where} {self._waited()}"

    async def _remove(self, node: str) -> tuple[bool, str]:
        index: int | str = "?"
        try:
            async with self._client(self.wait_s) as client:
                index = await client.remove_member(node)
        except ClientError as exc:
            if "NOT_FOUND" not in str(exc):
                return False, f"RemoveMember failed: {exc}"
        ok, cfg = await self._wait_config(
            lambda c: node not in c.voters and node not in c.learners, self.wait_s
        )
        if not ok:
            return False, f"config index {index}; removal still uncommitted {self._waited()}"
        self.cluster.retire(node)
        self._on_members(self.cluster.client_addresses)
        return True, f"config index {index}; voters {sorted(cfg.voters) if cfg else []}"
