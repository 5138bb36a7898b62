"""Seeded random schedules (drop, reorder, duplicate, crash/restart) against Raft's safety
properties. Reference: section 5.2 (Election Safety), 5.3 (Log Matching), 5.4 (Leader
Completeness, State Machine Safety). Deterministic: each seed is one fixed schedule."""

from __future__ import annotations

import itertools
import random

import pytest

from impl._core import CommittedConflict, Role

from ._harness import Net


def _check(net: Net, leaders_by_term: dict[int, str], committed: dict[int, int]) -> None:
    for node_id in net.voters:
        core = net[node_id]
        if core.role is Role.LEADER:
            # Election Safety: at most one leader per term
            assert leaders_by_term.setdefault(core.term, node_id) == node_id
        # State Machine Safety: every committed index has one term everywhere
        for index in range(core.first_index, core.commit_index + 1):
            term = core.term_at(index)
            assert term is not None
            assert committed.setdefault(index, term) == term, (node_id, index)
    # applied sequences are prefixes of one another
    applied = sorted((n.applied for n in net.nodes.values()), key=len)
    for shorter, longer in itertools.pairwise(applied):
        assert longer[: len(shorter)] == shorter


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("size", [3, 4, 5])
def test_random_schedules_keep_safety(seed: int, size: int) -> None:
    rng = random.Random(seed * 100 + size)
    net = Net(size, max_entries_per_append=4, max_inflight_appends=3)
    leaders_by_term: dict[int, str] = {}
    committed: dict[int, int] = {}
    counter = 0
    for _step in range(600):
        roll = rng.random()
        node_id = rng.choice(net.voters)
        core = net[node_id]
        if roll < 0.05 and node_id not in net.down:
            core.election_timeout()
        elif roll < 0.12:
            leaders = [n for n in net.leaders() if n not in net.down]
            if leaders:
                net[rng.choice(leaders)].heartbeat_timeout()
        elif roll < 0.15 and node_id not in net.down:
            core.check_quorum_timeout()
        elif roll < 0.30:
            leaders = [n for n in net.leaders() if n not in net.down]
            if leaders:
                counter += 1
                net[rng.choice(leaders)].propose(f"c{counter}".encode())
        elif roll < 0.32:
            if node_id in net.down:
                net.down.discard(node_id)
                net.restart(node_id)
            elif len(net.down) < (size - 1) // 2:
                net.flush(node_id)
                net.down.add(node_id)
        elif roll < 0.34 and net.queue:
            net.queue.rotate(rng.randrange(len(net.queue)))  # reorder
        elif roll < 0.36 and net.queue:
            net.queue.append(net.queue[rng.randrange(len(net.queue))])  # duplicate
        elif roll < 0.40 and net.queue:
            net.queue.popleft()  # drop
        elif roll < 0.42 and node_id in net.leaders() and net.nodes[node_id].applied_index:
            net.take_snapshot(node_id)
        else:
            try:
                net.deliver_one()
            except CommittedConflict as exc:  # would be a safety bug
                raise AssertionError(str(exc)) from exc
        net.flush_all()
        _check(net, leaders_by_term, committed)
    # heal and settle: a leader emerges and everyone catches up
    net.down.clear()
    for node_id in net.voters:
        net.restart(node_id)
    for _ in range(6):
        for node_id in net.voters:
            net[node_id].check_quorum_timeout()
        net.timeout(rng.choice(net.voters))
        net.run()
        if net.leaders():
            break
    leader = net.leader()
    net[leader].propose(b"final")
    net.run()
    for _ in range(3):
        net.heartbeat(leader)
    _check(net, leaders_by_term, committed)
    final = net[leader].commit_index
    assert final > 0
    for node_id in net.voters:
        assert net[node_id].commit_index == final
        assert net.nodes[node_id].applied[-1] == b"final"
