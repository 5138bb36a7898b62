"""Nothing that depends on unpersisted state leaves a node (over the real peer stream).

Figure 2 of the Raft paper: currentTerm, votedFor and log[] are updated on stable
storage before responding to RPCs; commitIndex is volatile. Each node's store is
spied on (the real SQLite store underneath records what each save made
durable); when a granted vote or a successful append reply reaches its
receiver, the sender's store must already hold that vote or those entries, and
a write the leader acknowledges must be durable in the leader's own log
(thesis 10.2.1: the leader counts itself only after its own persist). And
since commitIndex is volatile, a commit alone costs no save of its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from impl import Node
from impl._core import AppendResponse, Entry, HardState, Message, VoteResponse
from impl._kv import encode_put

from ._netutil import LocalCluster

pytestmark = [pytest.mark.network, pytest.mark.timeout(60)]


class DurableView:
    """DurableView records, per node, what its saves made durable (vote, term, last index)."""

    def __init__(self) -> None:
        self.hard: dict[str, HardState] = {}
        self.last: dict[str, int] = {}
        self.saves: dict[str, int] = {}
        self.violations: list[str] = []
        self.votes_checked = 0
        self.acks_checked = 0

    def spy(self, node_id: str, node: Node) -> None:
        storage: Any = node._storage
        core = node._core
        assert storage is not None and core is not None
        inner = storage.save
        self.hard[node_id] = core.hard_state
        self.last[node_id] = core.last_index
        self.saves[node_id] = 0

        def save(hard_state: HardState | None, entries: Sequence[Entry]) -> None:
            inner(hard_state, entries)  # durable from here on
            self.saves[node_id] += 1
            if hard_state is not None:
                self.hard[node_id] = hard_state
            if entries:
                self.last[node_id] = entries[-1].index

        storage.save = save
        on_reply = node._on_peer_reply

        def checked(msg: Message) -> None:
            self.check(node_id, msg)
            on_reply(msg)

        node._on_peer_reply = checked  # type: ignore[method-assign]
        if node._senders is not None:
            node._senders._on_reply = checked
            for stream in node._senders._streams.values():
                stream._on_reply = checked

    def check(self, receiver: str, msg: Message) -> None:
        sender = msg.sender
        if isinstance(msg, VoteResponse) and msg.granted and not msg.prevote:
            hard = self.hard.get(sender)
            if hard is None or hard.vote != receiver or hard.term < msg.term:
                self.violations.append(f"{sender} granted {receiver} a vote not yet durable")
        if isinstance(msg, VoteResponse) and msg.granted and not msg.prevote:
            self.votes_checked += 1
        if isinstance(msg, AppendResponse) and msg.success:
            self.acks_checked += 1
        if (
            isinstance(msg, AppendResponse)
            and msg.success
            and (self.last.get(sender, 0) < msg.match_index)
        ):
            self.violations.append(
                f"{sender} acked index {msg.match_index} with only {self.last.get(sender)} durable"
            )


def test_replies_and_acknowledged_writes_follow_their_persist(tmp_path: Path) -> None:
    async def main() -> None:
        cluster = LocalCluster(tmp_path)
        view = DurableView()
        try:
            await cluster.start_all()
            leader_id = await cluster.wait_leader()
            for node_id, node in cluster.nodes.items():
                view.spy(node_id, node)
            leader = cluster.nodes[leader_id]
            before = view.saves[leader_id]
            count = 40
            for i in range(count):
                await leader.propose(encode_put(f"k{i}", b"v", "", 0))
                assert view.last[leader_id] >= leader.applied_index  # own log durable first
            # One save per write on the leader; a commit-only hard state adds none (the
            # election below and heartbeats add none either: they are not counted here).
            assert view.saves[leader_id] - before <= count + 2
            # A new election over the streams: votes must be durable before they are granted.
            target = next(n for n in cluster.nodes if n != leader_id)
            # A transfer is best-effort (it is abandoned after an election timeout), so
            # retry it a few times on a loaded machine.
            for _ in range(5):
                if cluster.nodes[target].role.value == "leader":
                    break
                current = cluster.leader()
                if current is not None and current != target:
                    cluster.nodes[current].transfer_leadership(target)
                await asyncio.sleep(1.0)
            assert cluster.nodes[target].role.value == "leader"
            new_leader = cluster.nodes[target]
            for i in range(10):
                await new_leader.propose(encode_put(f"j{i}", b"v", "", 0))
            await asyncio.sleep(0.1)
            assert view.violations == []
            assert view.votes_checked >= 1 and view.acks_checked >= count
        finally:
            await cluster.stop_all()

    asyncio.run(main())
