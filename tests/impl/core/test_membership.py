"""Membership change in the sans-IO core, one server at a time.

Reference: Raft thesis chapter 4 — section 4.1 (single-server changes; a server uses the
latest configuration in its log, committed or not), 4.2.1 (new servers catch up as
non-voting learners first), 4.2.2 (removing the current leader), and Ongaro's 2015 raft-dev
fix (no configuration entry before an entry of the leader's own term has committed).
"""

from __future__ import annotations

import pytest

from impl._core import (
    AppendRequest,
    CoreConfig,
    Entry,
    EntryKind,
    Membership,
    MembershipChangeError,
    MembershipRefusal,
    NotLeader,
    RaftCore,
    Role,
    SnapshotRequest,
    StoredState,
    UnknownSender,
    VoteRequest,
    VoteResponse,
    decode_config,
    encode_config,
)

from ._harness import CLUSTER, Net, role_of

ADDR = "127.0.0.1:7004"


def _cluster(size: int = 3) -> Net:
    """_cluster: n1 leads and has committed a write of its term (so changes are allowed)."""
    net = Net(size)
    net.elect("n1")
    net.propose(b"first")
    net.run()
    net.heartbeat()
    return net


def _add(net: Net, node_id: str, promote: bool = True) -> None:
    """_add starts ``node_id`` (join), adds it as a learner and, once caught up, promotes it."""
    net.add_node(node_id)
    leader = net.leader()
    net[leader].add_learner(node_id, ADDR)
    net.flush(leader)
    net.run()
    net.heartbeat(leader)
    if promote:
        assert node_id in net[leader].caught_up_learners()
        net[leader].promote_learner(node_id)
        net.flush(leader)
        net.run()
        net.heartbeat(leader)


def _committed(core: RaftCore) -> bool:
    return core.membership.committed


def _new_leader(net: Net, node_id: str) -> None:
    """_new_leader expires every follower's leader lease and elects ``node_id``."""
    for other in net.voters:
        if other not in net.down:
            net[other].check_quorum_timeout()
    net.flush_all()
    net.elect(node_id)


def test_config_entry_payload_is_the_contract_json() -> None:
    """Reference: thesis 4.1 — a CONFIG entry holds the whole new configuration."""
    data = encode_config({"n2": "b:2", "n1": "a:1"}, {"n4": ADDR})
    assert data == b'{"learners":{"n4":"127.0.0.1:7004"},"voters":{"n1":"a:1","n2":"b:2"}}'
    config = decode_config(data, 7)
    assert config == Membership({"n1": "a:1", "n2": "b:2"}, {"n4": ADDR}, 7, True)
    assert config.members == ("n1", "n2", "n4") and config.encode() == data
    for bad in (b"[]", b"{", b'{"voters":{}}', b'{"voters":{"n1":1}}', b'{"x":{}}'):
        with pytest.raises(ValueError):
            decode_config(bad)


def test_add_learner_catch_up_then_promote() -> None:
    """Reference: thesis 4.2.1 — a new server catches up as a learner, then becomes a voter."""
    net = _cluster()
    for i in range(5):
        net.propose(f"v{i}".encode())
    net.run()
    core4 = net.add_node("n4")
    assert core4.membership.voters == {} and core4.role is Role.FOLLOWER
    index = net["n1"].add_learner("n4", ADDR)
    assert net["n1"].membership == Membership(
        {"n1": "", "n2": "", "n3": ""}, {"n4": ADDR}, index, False
    )
    net.flush("n1")
    # not caught up until the learner holds the commit index
    assert net["n1"].caught_up_learners() == ()
    with pytest.raises(MembershipChangeError) as refused:
        net["n1"].promote_learner("n4")
    assert refused.value.reason is MembershipRefusal.BLOCKED  # the add is not committed yet
    net.run()
    net.heartbeat()
    assert net["n1"].membership.committed
    assert net["n1"].progress["n4"].match == net["n1"].commit_index
    assert net.nodes["n4"].applied == net.nodes["n1"].applied  # every write reached it
    assert net["n1"].caught_up_learners() == ("n4",)
    promoted = net["n1"].promote_learner("n4")
    net.flush("n1")
    net.run()
    net.heartbeat()
    for node_id in net.voters:
        membership = net[node_id].membership
        assert membership.voters == {"n1": "", "n2": "", "n3": "", "n4": ADDR}, node_id
        assert membership.learners == {} and membership.index == promoted
    # now a voter: it campaigns, and the four-voter quorum (3) needs it or both others
    net.cut("n1", "n2")
    net.cut("n1", "n3")
    before = net["n1"].commit_index
    net.propose(b"needs n4")
    net.run()
    assert net["n1"].commit_index == before  # n1 + n4 = 2 of 4: no quorum
    net.heal()
    net.heartbeat()
    assert net["n1"].commit_index > before


def test_learner_never_counts_never_campaigns() -> None:
    """Reference: thesis 4.2.1 — a learner receives the log but does not vote or count."""
    net = _cluster(2)
    _add(net, "n3", promote=False)
    assert net["n1"].membership.learners == {"n3": ADDR}
    # the commit of this entry needs n2: n1 + learner n3 would be "2 of 3" if n3 counted
    net.cut("n1", "n2")
    before = net["n1"].commit_index
    net.propose(b"x")
    net.run()
    assert net["n1"].progress["n3"].match > before  # n3 holds it
    assert net["n1"].commit_index == before  # but it is not a voter
    # a learner's election timeout does nothing
    net["n3"].election_timeout()
    assert not [m for m in net["n3"].ready().messages]
    assert role_of(net["n3"]) is Role.FOLLOWER and net["n3"].term == net["n1"].term
    net.heal()
    net.heartbeat()
    assert net["n1"].commit_index > before
    # check-quorum counts voters only: with n2 silent, n1 + learner n3 is no quorum of 2
    net.cut("n1", "n2")
    net.heartbeat()
    net["n1"].check_quorum_timeout()
    net["n1"].check_quorum_timeout()
    assert role_of(net["n1"]) is Role.FOLLOWER


def test_remove_follower() -> None:
    """Reference: thesis 4.1 — removing a voter shrinks the quorum to the remaining voters."""
    net = _cluster()
    index = net["n1"].remove_server("n3")
    net.flush("n1")
    assert "n3" not in net["n1"].progress  # no more appends to it
    net.run()
    net.heartbeat()
    assert net["n1"].membership.voters == {"n1": "", "n2": ""}
    assert net["n1"].membership.committed and net["n1"].membership.index == index
    sent_to_n3 = sum(1 for s in net.sent if s.dst == "n3")
    net.propose(b"after")
    net.run()
    net.heartbeat()
    assert sum(1 for s in net.sent if s.dst == "n3") == sent_to_n3
    # the quorum of {n1, n2} is both: without n2 nothing commits
    net.cut("n1", "n2")
    before = net["n1"].commit_index
    net.propose(b"needs n2")
    net.run()
    assert net["n1"].commit_index == before
    # and n3's messages are refused by the members now
    with pytest.raises(UnknownSender):
        net["n1"].receive(VoteRequest(CLUSTER, "n3", 99, True, 99, 9))


def test_remove_leader_steps_down_after_commit() -> None:
    """Reference: thesis 4.2.2 — the leader leads without counting itself, then steps down."""
    net = _cluster()
    net.cut("n1", "n3")
    net["n1"].remove_server("n1")
    net.flush("n1")
    net.run()
    # n1 and n2 hold the entry; n1 no longer counts, so {n2, n3} needs n3 as well
    assert role_of(net["n1"]) is Role.LEADER
    assert not _committed(net["n1"])
    net.heal()
    net.heartbeat("n1")
    assert _committed(net["n1"])
    assert role_of(net["n1"]) is Role.FOLLOWER  # stepped down once it committed
    assert net.nodes["n1"].timer is not None
    # outside the configuration it never campaigns
    net["n1"].election_timeout()
    assert role_of(net["n1"]) is Role.FOLLOWER and not net["n1"].ready().messages
    # the rest elect a leader and commit without n1
    _new_leader(net, "n2")
    net.propose(b"after", "n2")
    net.run()
    net.heartbeat("n2")
    assert net["n3"].commit_index == net["n2"].commit_index
    assert net.nodes["n3"].applied[-1] == b"after"


def test_change_blocked_before_own_term_commit_and_while_pending() -> None:
    """Reference: the 2015 single-server change fix and thesis 4.1 (no overlapping changes).

    n1 promotes learner n4 but the entry reaches nobody; n2 takes over in a new term. Until
    an entry of n2's term commits, n2 may not append a change: its log may lack n1's change
    (it does), and appending a conflicting one would let the two configurations' quorums
    miss each other. Once its no-op commits, n2's own change goes through.
    """
    net = _cluster()
    _add(net, "n4", promote=False)
    net.isolate("n1")
    net["n1"].promote_learner("n4")
    net.flush("n1")
    assert net["n1"].membership.voters.keys() == {"n1", "n2", "n3", "n4"}
    # a second change while the first is uncommitted is refused
    with pytest.raises(MembershipChangeError) as pending:
        net["n1"].remove_server("n3")
    assert pending.value.reason is MembershipRefusal.BLOCKED
    assert "not committed yet" in str(pending.value)
    net.drop_all()
    _new_leader(net, "n2")
    core2 = net["n2"]
    assert "n4" in core2.membership.learners  # n1's promotion never reached it
    assert set(core2.progress) == {"n1", "n3", "n4"}  # a new leader replicates to learners
    # n2's log was all committed when it won, so no entry of its term exists yet; then one is
    # written but not acknowledged: both times a change is refused and changes nothing
    for step in ("elected", "written"):
        before = core2.status()
        with pytest.raises(MembershipChangeError) as early:
            core2.remove_server("n3")
        assert early.value.reason is MembershipRefusal.BLOCKED, step
        assert "no entry of term" in str(early.value)
        assert core2.status() == before
        if step == "elected":
            net.filter = lambda s: False
            net.propose(b"own term", "n2")
            net.run()
    net.filter = None
    for _ in range(2):  # the first round finds the append lost, the second resends it
        net.heartbeat("n2")
    assert core2.term_at(core2.commit_index) == core2.term
    index = core2.remove_server("n4")
    net.flush("n2")
    net.run()
    net.heartbeat("n2")
    assert core2.membership.index == index and core2.membership.committed
    assert core2.membership.voters.keys() == {"n1", "n2", "n3"}
    assert core2.membership.learners == {}
    # n1 rejoins: its uncommitted promotion is overwritten, and its config reverts to n2's
    net.heal()
    net.heartbeat("n2")
    assert net["n1"].membership == core2.membership


def test_transfer_blocks_changes_and_refuses_non_voters() -> None:
    """Reference: thesis 3.10 and 4.2.1 — no change during a transfer; only voters lead."""
    net = _cluster()
    _add(net, "n4", promote=False)
    with pytest.raises(ValueError, match="not a voter"):
        net["n1"].transfer_leadership("n4")
    with pytest.raises(ValueError, match="unknown"):
        net["n1"].transfer_leadership("n9")
    net.isolate("n2")
    net["n1"].transfer_leadership("n2")
    with pytest.raises(MembershipChangeError, match="transfer"):
        net["n1"].remove_server("n3")


def test_truncation_reverts_config() -> None:
    """Reference: thesis 4.1 — a truncated config entry stops being the config in use."""
    core = RaftCore(CoreConfig("n2", ("n1", "n2", "n3"), CLUSTER), StoredState.empty())
    initial = core.membership
    added = encode_config({"n1": "", "n2": "", "n3": ""}, {"n4": ADDR})
    core.receive(
        AppendRequest(CLUSTER, "n1", 1, 0, 0, (Entry(1, 1, EntryKind.CONFIG, added),), 0, 0)
    )
    assert core.membership == Membership({"n1": "", "n2": "", "n3": ""}, {"n4": ADDR}, 1, False)
    # n4 is a member now: its messages are accepted
    core.receive(VoteRequest(CLUSTER, "n4", 1, True, 0, 0))
    # a leader of term 2 that never had the entry overwrites it
    core.receive(
        AppendRequest(CLUSTER, "n3", 2, 0, 0, (Entry(1, 2, EntryKind.NORMAL, b"x"),), 0, 0)
    )
    assert core.membership == initial
    with pytest.raises(UnknownSender):
        core.receive(VoteRequest(CLUSTER, "n4", 2, True, 0, 0))


def test_restart_uses_config_from_log() -> None:
    """Reference: thesis 4.1 — the configuration is in the log, so it survives a restart."""
    net = _cluster()
    _add(net, "n4")
    net["n1"].remove_server("n2")
    net.flush("n1")
    net.run()
    net.heartbeat()
    expected = net["n1"].membership
    for node_id in ("n1", "n3", "n4"):
        net.restart(node_id)
        assert net[node_id].membership == expected, node_id


def test_snapshot_carries_config_and_late_learner_catches_up_by_snapshot() -> None:
    """Reference: thesis 4.1 and section 7 — the snapshot holds the config at its index."""
    net = _cluster()
    _add(net, "n4")  # config entry in the log, then compacted away
    for i in range(5):
        net.propose(f"v{i}".encode())
    net.run()
    net.heartbeat()
    meta = net.take_snapshot("n1")
    assert meta.config is not None
    assert meta.config.voters.keys() == {"n1", "n2", "n3", "n4"}
    assert meta.voters == ("n1", "n2", "n3", "n4")
    assert net["n1"].first_index > net["n1"].membership.index  # only the snapshot has it
    assert net["n1"].membership.voters.keys() == {"n1", "n2", "n3", "n4"}
    # a learner added now starts behind the compacted log: it gets the snapshot
    net.add_node("n5")
    net["n1"].add_learner("n5", "127.0.0.1:7005")
    net.flush("n1")
    net.run()
    for _ in range(2):
        net.heartbeat()
    installs = [s for s in net.sent if s.dst == "n5" and isinstance(s.message, SnapshotRequest)]
    assert installs
    core5 = net["n5"]
    assert core5.membership == net["n1"].membership
    assert core5.membership.learners == {"n5": "127.0.0.1:7005"}
    assert net.nodes["n5"].applied == net.nodes["n1"].applied
    assert net["n1"].caught_up_learners() == ("n5",)
    # restarting from the snapshot alone (log compacted past every config entry) keeps it
    net.heartbeat()
    meta = net.take_snapshot("n1")
    net.restart("n1")
    assert net["n1"].first_index > net["n1"].membership.index
    assert net["n1"].membership.voters.keys() == {"n1", "n2", "n3", "n4"}
    assert net["n1"].membership.learners == {"n5": "127.0.0.1:7005"}
    assert meta.config is not None and meta.config.learners.keys() == {"n5"}


def test_joining_node_waits_then_follows() -> None:
    """Reference: thesis 4.2.1 — a new server knows no configuration and never campaigns."""
    net = _cluster()
    core4 = net.add_node("n4")
    core4.election_timeout()
    assert not core4.has_ready() or not core4.ready().messages
    assert core4.role is Role.FOLLOWER and core4.term == 0
    with pytest.raises(UnknownSender):
        core4.receive(VoteRequest(CLUSTER, "n2", 5, False, 9, 1))
    net["n1"].add_learner("n4", ADDR)
    net.flush("n1")
    net.run()
    net.heartbeat()
    assert core4.leader_id == "n1" and core4.term == net["n1"].term
    # a non-member claiming to lead an older term is refused
    with pytest.raises(UnknownSender):
        core4.receive(AppendRequest(CLUSTER, "n9", core4.term - 1, 0, 0, (), 0, 0))
    assert core4.membership.learners == {"n4": ADDR}
    assert core4.membership.voters.keys() == {"n1", "n2", "n3"}
    core4.election_timeout()  # still a learner: nothing
    assert core4.role is Role.FOLLOWER
    net["n1"].promote_learner("n4")
    net.flush("n1")
    net.run()
    net.heartbeat()
    # a voter now: after the leader's lease ends it can be elected
    _new_leader(net, "n4")
    assert net.leader() == "n4"


def test_join_config_validation() -> None:
    with pytest.raises(ValueError, match="join"):
        CoreConfig("n4", ("n1", "n4"), CLUSTER, join=True)
    assert CoreConfig("n4", ("n4",), CLUSTER, join=True).voters == ()
    with pytest.raises(ValueError, match="voters or learners"):
        CoreConfig("n4", ("n1",), CLUSTER)
    config = CoreConfig("n2", ("n1",), CLUSTER, learners=("n2",), addresses={"n1": "a:1"})
    core = RaftCore(config, StoredState.empty())
    assert core.membership == Membership({"n1": "a:1"}, {"n2": ""}, 0, True)
    core.election_timeout()  # a learner from the start
    assert core.role is Role.FOLLOWER and core.term == 0


def _snapshot_of(core: RaftCore) -> tuple[object, ...]:
    return (
        core.status(),
        core.membership,
        [(e.index, e.term, e.kind, e.data) for e in core.entries_from(core.first_index)],
        core.has_ready(),
    )


def test_refusals_change_nothing() -> None:
    """Reference: thesis 4.1-4.2.2 — every refused change leaves the core as it was."""
    net = _cluster()
    _add(net, "n4", promote=False)
    net.isolate("n4")
    net.propose(b"n4 falls behind")
    net.run()
    net.heartbeat()
    leader = net["n1"]
    follower = net["n2"]
    cases: list[tuple[RaftCore, str, tuple[str, ...], MembershipRefusal | None]] = [
        (follower, "add_learner", ("n5", ADDR), None),  # not the leader
        (follower, "remove_server", ("n3",), None),
        (leader, "add_learner", ("n2", ADDR), MembershipRefusal.ALREADY_MEMBER),
        (leader, "add_learner", ("n4", ADDR), MembershipRefusal.ALREADY_MEMBER),
        (leader, "add_learner", ("", ADDR), MembershipRefusal.INVALID),
        (leader, "add_learner", ("n5", ""), MembershipRefusal.INVALID),
        (leader, "remove_server", ("n9",), MembershipRefusal.NOT_MEMBER),
        (leader, "promote_learner", ("n2",), MembershipRefusal.NOT_LEARNER),
        (leader, "promote_learner", ("n9",), MembershipRefusal.NOT_MEMBER),
        (leader, "promote_learner", ("n4",), MembershipRefusal.NOT_CAUGHT_UP),
    ]
    for core, op, args, reason in cases:
        before = _snapshot_of(core)
        with pytest.raises((MembershipChangeError, Exception)) as refused:
            getattr(core, op)(*args)
        if reason is None:
            assert type(refused.value).__name__ == "NotLeader", (op, args)
        else:
            assert isinstance(refused.value, MembershipChangeError), (op, args)
            assert refused.value.reason is reason, (op, args, refused.value)
        assert _snapshot_of(core) == before, (op, args)
    assert leader.caught_up_learners() == () and follower.caught_up_learners() == ()
    # the last voter
    single = Net(1)
    single.timeout("n1")
    single.propose(b"x")
    single.flush_all()
    before = _snapshot_of(single["n1"])
    with pytest.raises(MembershipChangeError) as last:
        single["n1"].remove_server("n1")
    assert last.value.reason is MembershipRefusal.LAST_VOTER
    assert _snapshot_of(single["n1"]) == before


def test_single_voter_grows_and_shrinks() -> None:
    """Reference: thesis 4.1 — a one-server cluster grows one server at a time."""
    net = Net(1)
    net.timeout("n1")
    net.propose(b"solo")
    net.run()
    assert net["n1"].commit_index == 2 or net["n1"].commit_index == 1
    _add(net, "n2")
    _add(net, "n3")
    assert net["n1"].membership.voters.keys() == {"n1", "n2", "n3"}
    net.propose(b"three")
    net.run()
    net.heartbeat()
    assert net.nodes["n3"].applied[-1] == b"three"
    net["n1"].remove_server("n2")
    net.flush("n1")
    net.run()
    net.heartbeat()
    assert net["n3"].membership.voters.keys() == {"n1", "n3"}


def test_installed_snapshot_config_is_used() -> None:
    """Reference: thesis 4.1 and section 7 — a follower behind the compacted log takes the
    configuration from the snapshot it installs (no CONFIG entry follows it)."""
    net = _cluster()
    net.isolate("n3")
    _add(net, "n4")
    _add(net, "n5", promote=False)
    net.heartbeat()
    net.take_snapshot("n1")
    assert net["n1"].first_index > net["n1"].membership.index
    assert net["n3"].membership.voters.keys() == {"n1", "n2", "n3"}
    net.heal()
    for _ in range(3):
        net.heartbeat()
    assert any(s.dst == "n3" and isinstance(s.message, SnapshotRequest) for s in net.sent)
    assert net["n3"].membership == net["n1"].membership
    assert net["n3"].membership.learners == {"n5": ADDR}
    net.restart("n3")  # and from its stored snapshot after a restart
    assert net["n3"].membership == net["n1"].membership


def test_learner_vote_is_not_counted() -> None:
    """Reference: thesis 4.2.1 — learners are not asked for votes and their grants never count."""
    config = CoreConfig("n1", ("n1", "n2", "n3"), CLUSTER, learners=("n4",), prevote=False)
    core = RaftCore(config, StoredState.empty())
    core.election_timeout()
    asked = sorted(env.to for env in core.ready().messages)
    assert asked == ["n2", "n3"]
    core.receive(VoteResponse(CLUSTER, "n4", 1, False, True, 1))
    assert core.role is Role.CANDIDATE
    core.receive(VoteResponse(CLUSTER, "n2", 1, False, True, 1))
    assert role_of(core) is Role.LEADER
    assert set(core.progress) == {"n2", "n3", "n4"}


def test_removed_leader_sends_nothing_once_its_removal_commits() -> None:
    """Reference: thesis 4.2.2 — the reply that commits the leader's removal ends its reign:
    it steps down in that step and sends no further appends (as spec/ does)."""
    net = _cluster()
    net["n1"].remove_server("n1")
    net.flush("n1")
    net.flush_all()
    last_dst = ""
    while role_of(net["n1"]) is Role.LEADER:
        sent_before = len(net.sent)
        delivered = net.deliver_one()
        assert delivered is not None, "the removal never committed"
        last_dst = delivered.dst
    assert last_dst == "n1"
    assert not [s for s in net.sent[sent_before:] if s.src == "n1"]
    assert _committed(net["n1"])


def test_retiring_leader_does_not_replicate_further() -> None:
    """Reference: thesis 4.2.2 — a follower still behind when the removal commits gets
    nothing more from the retired leader (the next leader brings it up to date)."""
    net = Net(3, max_entries_per_append=1, max_inflight_appends=1)
    net.elect("n1")
    net.propose(b"first")
    net.run()
    net.heartbeat()
    net["n1"].remove_server("n1")
    for i in range(3):
        net["n1"].propose(f"after{i}".encode())
    net.flush("n1")
    while role_of(net["n1"]) is Role.LEADER:
        sent_before = len(net.sent)
        assert net.deliver_one() is not None, "the removal never committed"
        net.flush_all()
    assert net["n1"].last_index > net["n1"].commit_index  # entries were still unsent
    assert not [s for s in net.sent[sent_before:] if s.src == "n1"]


def test_promotion_commits_what_the_new_quorum_holds() -> None:
    """Reference: thesis 4.1 — a configuration takes effect when appended: promoting a
    caught-up learner can commit at once, and the appends of that step carry it."""
    net = _cluster(2)
    _add(net, "n3", promote=False)
    net.cut("n1", "n2")
    index = net.propose(b"n1 and n3 only")
    net.run()
    assert net["n1"].commit_index < index  # {n1, n2} needs n2
    assert net["n1"].caught_up_learners() == ("n3",)
    net["n1"].promote_learner("n3")
    assert net["n1"].commit_index == index  # n1 + n3 are 2 of {n1, n2, n3}
    rd = net["n1"].ready()
    commits = {
        env.message.leader_commit for env in rd.messages if isinstance(env.message, AppendRequest)
    }
    assert commits == {index}


def test_sentinel_on_request_unblocks_a_change_on_an_idle_cluster() -> None:
    """Reference: the 2015 fix with the seed's sentinel rule (thesis 4.1, 6.4).

    A leader elected with a fully committed log appends no sentinel, so the own-term rule
    refuses every change until something of its term commits. ``append_sentinel`` writes that
    entry on request: once it commits, the change goes through; a second one is refused.
    """
    net = Net(3)
    net.elect("n1")
    core = net["n1"]
    assert core.last_index == 0  # nothing to commit when it won: no sentinel
    with pytest.raises(MembershipChangeError) as idle:
        core.add_learner("n4", ADDR)
    assert idle.value.reason is MembershipRefusal.BLOCKED and "no entry of term" in str(idle.value)
    index = core.append_sentinel()
    assert core.entries_from(index)[0].kind is EntryKind.NOOP
    with pytest.raises(MembershipChangeError, match="already holds an entry of term"):
        core.append_sentinel()
    with pytest.raises(NotLeader):
        net["n2"].append_sentinel()
    net.flush("n1")
    net.run()
    net.heartbeat()
    assert core.commit_index == index
    net.add_node("n4")
    assert core.add_learner("n4", ADDR) == index + 1


def test_reply_that_commits_the_leaders_removal_also_confirms_its_reads() -> None:
    """Reference: thesis 4.2.2 and 6.4 — a leader removing itself still serves reads until the
    removal commits. The reply that commits it also echoes a read's heartbeat number; the
    leader counts that echo before it steps down, so the read is answered (as spec/ does)
    rather than aborted. A chaos run found the order reversed: the read was aborted."""
    net = _cluster()
    net["n1"].read_index(7)
    net["n1"].remove_server("n1")
    # only the config entry's appends carry the read's number: drop the read's heartbeats
    net.filter = lambda s: not (isinstance(s.message, AppendRequest) and not s.message.entries)
    net.run()
    assert _committed(net["n1"]) and role_of(net["n1"]) is Role.FOLLOWER
    assert [r.request_id for r in net.nodes["n1"].reads] == [7]
    assert not net.nodes["n1"].aborted
