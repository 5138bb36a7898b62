"""Membership changes on in-process nodes over real gRPC and SQLite (127.0.0.1).

Reference: Raft thesis 4.1 (one server at a time; a server uses the latest config
in its log), 4.2.1 (a new server catches up as a non-voting learner first),
4.2.2 (removing the leader: it steps down once the new config commits), and
Ongaro's 2015 fix (no change before an entry of the leader's term commits).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from impl import KVClient, KVStateMachine, RaftClient
from impl._core import Entry, EntryKind, HardState, Role, SnapshotMeta
from impl._kv import encode_put
from impl._node_storage import STORE_NAME
from impl._storage import SqliteStorage

from ._memberutil import CLUSTER_ID, MemberCluster, change_members, wait_for

pytestmark = [pytest.mark.network, pytest.mark.timeout(60)]


def run(root: Path, body: Callable[[MemberCluster], Awaitable[None]], **kw: Any) -> None:
    async def main() -> None:
        cluster = MemberCluster(root, **kw)
        try:
            await cluster.start_initial()
            await body(cluster)
        finally:
            await cluster.stop_all()

    asyncio.run(main())


async def _settle(c: MemberCluster) -> str:
    """_settle waits for a leader and commits one write in its term.

    A change waits until an entry of the leader's own term has committed (the 2015
    fix); a leader elected on an empty or fully committed log appends no term-change
    entry, so the first client write is what unblocks membership changes.
    """
    leader = await c.wait_leader(["n1", "n2", "n3"])
    await _put_all(list(c.initial.values()), {"settle": b"1"})
    return leader


async def _put_all(addresses: list[str], items: dict[str, bytes]) -> None:
    async with KVClient(addresses, deadline_s=15) as kv:
        for key, value in items.items():
            await kv.put(key, value)


def test_joiner_becomes_voter_and_holds_every_acknowledged_write(tmp_path: Path) -> None:
    """Reference: thesis 4.2.1 (learner first, promoted once caught up) and 4.1.

    Writes acknowledged before and after the change are all readable through
    the new member once it leads (a linearizable read at n4, thesis 6.4).
    """

    async def body(c: MemberCluster) -> None:
        await c.wait_leader(["n1", "n2", "n3"])
        before = {f"before-{i}": f"b{i}".encode() for i in range(20)}
        await _put_all(list(c.initial.values()), before)
        n4 = await c.start("n4", join=True)
        assert n4.members().voters == {}, "a joining node knows no config"
        index = await change_members(
            list(c.initial.values()), lambda cl: cl.add_member("n4", c.address("n4"))
        )
        assert index > 0
        async with RaftClient(list(c.initial.values()), deadline_s=15) as client:
            leader = c.nodes[c.leader() or "n1"]
            await wait_for(lambda: True if "n4" in leader.dialed_peers else None, 5, "dialed")
            await c.wait_voters(leader.config.node_id, {"n1", "n2", "n3", "n4"})
            after = {f"after-{i}": f"a{i}".encode() for i in range(20)}
            await _put_all(list(c.all.values()), after)
            members = await client.list_members()
            assert {m.member.id: m.voter for m in members.members} == dict.fromkeys(
                ("n1", "n2", "n3", "n4"), True
            )
            assert members.committed and members.config_index > index
            await c.wait_voters("n4", {"n1", "n2", "n3", "n4"})
            # n4 is a full voter: it can lead and answer linearizable reads.
            await client.transfer_leadership("n4")
            await c.wait_leader(["n1", "n2", "n3", "n4"])
            await wait_for(lambda: True if c.leader() == "n4" else None, 15, "n4 leads")
        async with KVClient([c.address("n4")], deadline_s=15) as kv:
            for key, value in {**before, **after}.items():
                assert await kv.get(key) == value, key
        assert n4.status().voters == c.all

    run(tmp_path, body)


def test_change_on_an_idle_cluster_needs_no_client_write(tmp_path: Path) -> None:
    """Reference: Ongaro's 2015 fix with the seed's sentinel rule (thesis 4.1, 6.4).

    A leader elected on an empty log appends no term-change entry, so the own-term rule
    would refuse every change until a client wrote. The node appends a no-op of its term
    when that rule is the only one in the way; the client's retry then succeeds.
    """

    async def body(c: MemberCluster) -> None:
        leader_id = await c.wait_leader(["n1", "n2", "n3"])
        leader = c.nodes[leader_id]
        assert leader.status().commit_index == 0  # no write, no sentinel
        await c.start("n4", join=True)
        index = await change_members(
            list(c.initial.values()), lambda cl: cl.add_member("n4", c.address("n4"))
        )
        core = leader._require_core()
        kinds = [e.kind for e in core.entries_from(1)]
        assert kinds[:index] == [EntryKind.NOOP, EntryKind.CONFIG], kinds
        assert core.term_at(1) == core.term
        await c.wait_voters(leader_id, {"n1", "n2", "n3", "n4"})

    run(tmp_path, body)


def test_remove_follower_then_cluster_commits_without_it(tmp_path: Path) -> None:
    """Reference: thesis 4.1 (removal is one config entry; quorum is of the new voters)."""

    async def body(c: MemberCluster) -> None:
        leader_id = await _settle(c)
        follower = next(i for i in ("n1", "n2", "n3") if i != leader_id)
        rest = {"n1", "n2", "n3"} - {follower}
        await change_members(list(c.initial.values()), lambda cl: cl.remove_member(follower))
        await c.wait_voters(leader_id, rest)
        # The removed follower's link is dropped after the removal committed ...
        leader = c.nodes[leader_id]
        await wait_for(
            lambda: True if follower not in leader.dialed_peers else None, 10, "link dropped"
        )
        assert follower not in leader.status().peers
        assert set(leader.dialed_peers) == rest - {leader_id}
        # ... and the two that remain commit on their own (2 of 2), without it.
        await c.stop(follower)
        addresses = [c.address(i) for i in sorted(rest)]
        await _put_all(addresses, {"k": b"v"})
        async with KVClient(addresses, deadline_s=15) as kv:
            assert await kv.get("k") == b"v"

    run(tmp_path, body)


def test_removed_leader_steps_down_and_the_rest_elect(tmp_path: Path) -> None:
    """Reference: thesis 4.2.2 (the leader removes itself and steps down once it commits)."""

    async def body(c: MemberCluster) -> None:
        old = await _settle(c)
        rest = sorted({"n1", "n2", "n3"} - {old})
        index = await change_members(list(c.initial.values()), lambda cl: cl.remove_member(old))
        assert index > 0
        new = await c.wait_leader(rest)
        assert new != old
        await c.wait_voters(new, set(rest))
        # The removed node is no voter of the config it uses, so it never campaigns.
        removed = c.nodes[old]
        await asyncio.sleep(1.0)  # several election timeouts
        assert removed.role is not Role.LEADER
        assert c.leader() == new
        addresses = [c.address(i) for i in rest]
        await _put_all(addresses, {"after-removal": b"1"})

    run(tmp_path, body)


def test_restart_uses_the_config_in_its_log_not_the_flags(tmp_path: Path) -> None:
    """Reference: thesis 4.1 (a server uses the latest config in its log, even after a restart).

    n2 restarts with the initial --peers (n1, n2, n3) after n3 was removed and n4
    added; it must come back with {n1, n2, n4}, and so must the joiner n4.
    """

    async def body(c: MemberCluster) -> None:
        await _settle(c)
        await c.start("n4", join=True)
        everyone = list(c.all.values())
        await change_members(everyone, lambda cl: cl.add_member("n4", c.address("n4")))
        await c.wait_voters("n1", {"n1", "n2", "n3", "n4"})
        await change_members(everyone, lambda cl: cl.remove_member("n3"))
        await c.wait_voters("n1", {"n1", "n2", "n4"})
        await c.stop("n3")
        for node_id in ("n2", "n4"):
            await c.wait_voters(node_id, {"n1", "n2", "n4"})
            await c.stop(node_id)
            node = await c.start(node_id, join=node_id == "n4")
            assert set(node.members().voters) == {"n1", "n2", "n4"}, node_id
            assert node.members().voters["n4"] == c.address("n4")
        await c.wait_leader(["n1", "n2", "n4"])
        await _put_all([c.address(i) for i in ("n1", "n2", "n4")], {"k": b"v"})

    run(tmp_path, body)


def test_config_survives_compaction_in_the_snapshot(tmp_path: Path) -> None:
    """Reference: thesis 4.1 and section 7: a snapshot replaces the config entries it covers.

    With a snapshot every 5 entries, n4's config entries are compacted away; a node
    restarted from its snapshot still uses the new config, and a follower that is far
    behind gets it with InstallSnapshot.
    """

    async def body(c: MemberCluster) -> None:
        await _settle(c)
        await c.start("n4", join=True)
        await change_members(list(c.all.values()), lambda cl: cl.add_member("n4", c.address("n4")))
        await c.wait_voters("n1", {"n1", "n2", "n3", "n4"})
        await _put_all(list(c.all.values()), {f"k{i}": b"v" for i in range(12)})
        lead = c.leader() or "n1"
        follower = next(i for i in ("n1", "n2", "n3") if i != lead)
        await c.wait_applied(follower, c.nodes[lead].status().commit_index)
        assert c.nodes[follower].status().snapshot_index > 0
        await c.stop(follower)
        node = await c.start(follower)
        assert set(node.members().voters) == {"n1", "n2", "n3", "n4"}
        assert node.members().index > 0, "the config came from the stored snapshot or log"

    run(tmp_path, body, snapshot_every=5)


def test_far_behind_follower_learns_the_config_from_install_snapshot(tmp_path: Path) -> None:
    """Reference: section 7 and thesis 4.1: InstallSnapshot carries the config it covers.

    A follower that was down while n4 joined and the log was compacted past the config
    entries gets the config with the snapshot (it lists n4 as a voter) and the data.
    """

    async def body(c: MemberCluster) -> None:
        lead = await _settle(c)
        lagger = next(i for i in ("n1", "n2", "n3") if i != lead)
        await c.stop(lagger)
        await c.start("n4", join=True)
        alive = [c.address(i) for i in ("n1", "n2", "n3", "n4") if i != lagger]
        await change_members(alive, lambda cl: cl.add_member("n4", c.address("n4")))
        await c.wait_voters(lead, {"n1", "n2", "n3", "n4"})
        await _put_all(alive, {f"k{i}": b"v" for i in range(12)})
        leader = c.nodes[c.leader() or lead]
        assert leader.status().snapshot_index > 0
        node = await c.start(lagger)
        assert set(node.members().voters) == {"n1", "n2", "n3"}, "restarts with its old log"
        await c.wait_voters(lagger, {"n1", "n2", "n3", "n4"})
        await c.wait_applied(lagger, leader.status().commit_index)
        assert node.status().snapshot_index > 0, "it caught up through a snapshot"
        assert c.machines[lagger].get("k11") == b"v"
        # The installed snapshot's config is durable: a restart still uses it.
        await c.stop(lagger)
        node = await c.start(lagger)
        assert set(node.members().voters) == {"n1", "n2", "n3", "n4"}
        assert node.members().voters["n4"] == c.address("n4")

    run(tmp_path, body, snapshot_every=5)


def test_store_from_before_membership_starts_with_the_configured_peers(tmp_path: Path) -> None:
    """A data dir written before membership changes (snapshot meta without a config).

    Reference: thesis 4.1: with no config entry in its log and none in its snapshot, a
    node uses its initial config, here the configured peers with their addresses.
    """

    async def main() -> None:
        c = MemberCluster(tmp_path, n=1, spare=0)
        config = c.config("n1")
        config.data_dir.mkdir(parents=True)
        machine = KVStateMachine()
        machine.apply(encode_put("old", b"1", "", 0))
        store = SqliteStorage(config.data_dir / STORE_NAME, CLUSTER_ID, "n1")
        store.save(HardState(1, "n1", 0), [Entry(1, 1, EntryKind.NORMAL, b"")])
        store.save_snapshot(SnapshotMeta(1, 1, ("n1",)), machine.snapshot())
        store.close()
        try:
            node = await c.start("n1")
            assert dict(node.members().voters) == {"n1": c.address("n1")}
            await c.wait_leader(["n1"])
            assert c.machines["n1"].get("old") == b"1"
            await node.propose(encode_put("new", b"2", "", 0))  # an entry of this term
            index = node.add_member("n2", "127.0.0.1:1")  # membership works on the old store
            assert node.members().index == index and "n2" in node.members().learners
        finally:
            await c.stop_all()

    asyncio.run(main())
