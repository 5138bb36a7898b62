"""Random membership changes under message loss, reordering, duplication and crashes.

Reference: Raft thesis 4.1 (single-server changes keep old and new majorities overlapping, so
at most one leader per term), 4.2.1 (learners), 4.2.2 (removing the leader) and the 2015
single-server change fix; section 5.2 (Election Safety) and 5.4 (State Machine Safety).
Deterministic: each seed is one fixed schedule.
"""

from __future__ import annotations

import random

import pytest

from impl._core import (
    CommittedConflict,
    ConflictingLeader,
    MembershipChangeError,
    ProtocolError,
    RaftCore,
    Role,
)

from ._harness import Net

POOL = ("n4", "n5", "n6")


def _check(net: Net, leaders: dict[int, str], committed: dict[int, int]) -> None:
    for node_id in net.voters:
        core = net[node_id]
        if core.role is Role.LEADER:
            owner = leaders.setdefault(core.term, node_id)
            assert owner == node_id, f"two leaders in term {core.term}: {owner}, {node_id}"
        for index in range(core.first_index, core.commit_index + 1):
            term = core.term_at(index)
            assert term is not None
            assert committed.setdefault(index, term) == term, (node_id, index)


def _change(net: Net, core: RaftCore, rng: random.Random) -> str | None:
    """_change tries one random membership change on a leader; the op name if it was taken."""
    config = core.membership
    outsiders = [n for n in net.voters if n not in config.members]
    choice = rng.random()
    try:
        if choice < 0.35 and outsiders:
            core.add_learner(rng.choice(outsiders), "127.0.0.1:1")
            return "add"
        if choice < 0.7:
            for learner in core.caught_up_learners():
                core.promote_learner(learner)
                return "promote"
            return None
        victim = rng.choice(config.members)
        if victim == core.node_id and len(config.voters) <= 2:
            # Known liveness gap (thesis 4.2.2, also in spec/): if this leader loses office
            # before {other} commits, it holds entries the other needs but never campaigns,
            # and the other cannot win {self, other} without its vote. Safety is unaffected.
            return None
        core.remove_server(victim)
        return "remove"
    except MembershipChangeError:
        return None


@pytest.mark.parametrize("seed", range(16))
def test_random_membership_changes_keep_one_leader_per_term(seed: int) -> None:
    rng = random.Random(seed)
    net = Net(3, max_entries_per_append=4, max_inflight_appends=3)
    for node_id in POOL:
        net.add_node(node_id)
    leaders: dict[int, str] = {}
    committed: dict[int, int] = {}
    changes: dict[str, int] = {}
    counter = 0
    for _step in range(900):
        roll = rng.random()
        node_id = rng.choice(net.voters)
        up = [n for n in net.voters if n not in net.down]
        live_leaders = [n for n in net.leaders() if n not in net.down]
        if roll < 0.06 and node_id not in net.down:
            net[node_id].election_timeout()
        elif roll < 0.14 and live_leaders:
            net[rng.choice(live_leaders)].heartbeat_timeout()
        elif roll < 0.18:
            for other in up:
                net[other].check_quorum_timeout()
        elif roll < 0.30 and live_leaders:
            counter += 1
            net[rng.choice(live_leaders)].propose(f"c{counter}".encode())
        elif roll < 0.36 and live_leaders:
            op = _change(net, net[rng.choice(live_leaders)], rng)
            if op is not None:
                changes[op] = changes.get(op, 0) + 1
        elif roll < 0.38:
            if node_id in net.down:
                net.down.discard(node_id)
                net.restart(node_id)
            elif len(net.down) < 1:
                net.flush(node_id)
                net.down.add(node_id)
        elif roll < 0.40 and net.queue:
            net.queue.rotate(rng.randrange(len(net.queue)))
        elif roll < 0.42 and net.queue:
            net.queue.append(net.queue[rng.randrange(len(net.queue))])
        elif roll < 0.50 and net.queue:
            net.queue.popleft()  # loss
        elif roll < 0.51 and live_leaders:
            leader = rng.choice(live_leaders)
            if net.nodes[leader].applied_index:
                net.take_snapshot(leader)
        else:
            try:
                net.deliver_one()
            except (CommittedConflict, ConflictingLeader) as exc:
                raise AssertionError(f"safety: {exc}") from exc
            except ProtocolError:
                pass  # a message from a server outside the receiver's configuration
        net.flush_all()
        _check(net, leaders, committed)
    assert sum(changes.values()) > 0, "the schedule made no membership change"
    # settle: with the network healed, some voter of its own configuration wins and commits
    net.down.clear()
    net.queue.clear()
    for _ in range(30):
        for node_id in net.voters:
            net[node_id].check_quorum_timeout()
        net.flush_all()
        campaigners = [n for n in net.voters if n in net[n].membership.voters]
        net.timeout(rng.choice(campaigners))
        _run(net)
        if net.leaders():
            break
    _check(net, leaders, committed)
    leader = net.leader()
    net.propose(b"final", leader)
    for _ in range(10):
        net[leader].heartbeat_timeout()
        _run(net)
    _check(net, leaders, committed)
    assert net.nodes[leader].applied[-1] == b"final"
    for node_id in net[leader].membership.members:
        assert net.nodes[node_id].applied[-1] == b"final", node_id


def _run(net: Net) -> None:
    """_run delivers until quiet; messages from outside a receiver's configuration are dropped."""
    net.flush_all()
    for _ in range(100_000):
        try:
            if net.deliver_one() is None:
                return
        except ProtocolError:
            pass
        net.flush_all()
    raise AssertionError("network did not quiesce")
