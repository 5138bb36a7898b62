"""A learner added under a steady write load catches up and is promoted, with no election.

Reference: Raft thesis 4.2.1 — a new server joins as a non-voting member and catches up
before it counts; adding it must not disturb the cluster (chaos finding 9 saw 4-15 s of
stalls and an election when the adding leader's probes of the learner went unanswered).
In-process nodes over 127.0.0.1, real gRPC and SQLite.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from impl import RaftClient
from impl._core import Role

from ._load import cluster_under_load

pytestmark = [pytest.mark.network, pytest.mark.timeout(90)]


def test_learner_added_under_load_catches_up_and_is_promoted_without_election(
    tmp_path: Path,
) -> None:
    """Reference: thesis 4.2.1 — learner first, promoted once caught up (match >= commit).

    The learner joins with an empty log behind a few hundred entries while 6 clients write;
    within 5 s it must be a voter of the committed configuration, every node must still be
    in the term it was in before the addition (no election: the leader's heartbeats kept
    coming), the writes must go on meanwhile, and the leader must have heard the learner's
    replies (its match index for n4 moved, so it did not keep probing the same index).
    """

    async def main() -> None:
        async with cluster_under_load(tmp_path, 200) as (c, leader_id, load):
            leader = c.nodes[leader_id]
            terms = {i: n.term for i, n in c.nodes.items()}
            n4 = await c.start("n4", join=True)
            acked_before = load.acked
            started = time.monotonic()
            async with RaftClient(list(c.initial.values()), deadline_s=15) as client:
                index = await client.add_member("n4", c.address("n4"))
            assert index > 0
            await c.wait_voters(leader_id, {"n1", "n2", "n3", "n4"}, timeout_s=5.0)
            took = time.monotonic() - started
            assert leader.role is Role.LEADER
            assert {i: c.nodes[i].term for i in terms} == terms, "an election happened"
            assert n4.term == leader.term and n4.leader_id == leader_id
            assert leader.status().peers["n4"][0] >= index  # n4's replies reached the leader
            assert load.acked > acked_before, "no write completed while n4 caught up"
            await load.wait_acked(50)  # and the grown cluster keeps taking writes
            await c.wait_applied("n4", leader.status().commit_index - 50)
            await load.stop()
            assert took < 5.0

    asyncio.run(main())


def test_learner_that_is_not_up_yet_is_caught_up_once_it_listens(tmp_path: Path) -> None:
    """Reference: thesis 4.2.1 — the learner added before its server listens.

    The leader's dials fail until it does (the messages are lost, as Raft allows); the
    voters keep committing meanwhile, and once n4 listens it is caught up and promoted.
    """

    async def main() -> None:
        async with cluster_under_load(tmp_path, 100) as (c, leader_id, load):
            leader = c.nodes[leader_id]
            terms = {i: n.term for i, n in c.nodes.items()}
            async with RaftClient(list(c.initial.values()), deadline_s=15) as client:
                await client.add_member("n4", c.address("n4"))
            await load.wait_acked(100, timeout_s=10)  # the voters commit without n4
            assert set(leader.members().learners) == {"n4"}
            await c.start("n4", join=True)
            await c.wait_voters(leader_id, {"n1", "n2", "n3", "n4"}, timeout_s=10.0)
            assert {i: c.nodes[i].term for i in terms} == terms, "an election happened"
            await load.stop()

    asyncio.run(main())
