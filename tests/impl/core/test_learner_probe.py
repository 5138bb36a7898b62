"""The leader probes a silent learner at most once per heartbeat and keeps committing.

Reference: Raft thesis 4.2.1 (a new server catches up as a non-voting member; it must not
slow the cluster down) and section 5.3 (the leader backs off ``nextIndex`` only on the
follower's answer). Chaos finding 9: while a learner's replies did not reach the adding
leader, the leader kept re-sending at the same prev index. That is right (it has no answer
to back off on), provided it costs one probe per heartbeat, not one per proposal, and the
voters' replication goes on unhindered.
"""

from __future__ import annotations

from impl._core import AppendRequest, Role

from ._harness import Net, Sent

ADDR = "127.0.0.1:7004"


def _appends_to(sent: list[Sent], dst: str) -> list[AppendRequest]:
    return [s.message for s in sent if s.dst == dst and isinstance(s.message, AppendRequest)]


def test_silent_learner_gets_one_probe_per_heartbeat_and_voters_commit() -> None:
    """Reference: thesis 4.2.1 and section 5.3 — probing a learner that does not answer."""
    net = Net(3)
    net.elect("n1")
    net.propose(b"first")
    net.run()
    net.heartbeat()
    net.add_node("n4")
    net.down.add("n4")  # n4 does not answer yet (not listening, or its replies are lost)
    leader = net["n1"]
    index = leader.add_learner("n4", ADDR)
    net.flush("n1")
    net.run()
    for round_ in range(5):
        before = len(net.sent)
        for i in range(10):  # ten client writes between two heartbeats
            net.propose(f"w{round_}-{i}".encode())
            net.run()
        assert _appends_to(net.sent[before:], "n4") == [], "a proposal re-probed n4"
        before = len(net.sent)
        net.heartbeat("n1")
        probes = _appends_to(net.sent[before:], "n4")
        assert len(probes) == 1, probes
        # the probe stays where n4's answer is awaited: the config entry that added it
        assert probes[0].prev_log_index == index
    assert leader.role is Role.LEADER
    assert leader.commit_index == leader.last_index  # the voters commit without n4
    assert leader.progress["n4"].match == 0
    # n4 comes up: one heartbeat's probe is answered and the catch-up follows
    net.down.discard("n4")
    net.heartbeat("n1")
    net.heartbeat("n1")
    assert net["n4"].last_index == leader.last_index
    assert leader.progress["n4"].match == leader.last_index
    assert "n4" in leader.caught_up_learners()
