"""ReadIndex rounds are shared, but only by reads that arrived before the round started.

Reference: Raft thesis 6.4 — the leader records its commit index as the read
index, then confirms its leadership with a round of heartbeats; every read that
arrived before that round started may use the round's confirmation, a read that
arrives while the round is in flight may not (the round might have been sent by
a leader that was already deposed when the read arrived), so it waits for the
next round. etcd batches its ReadIndex requests the same way.
"""

from __future__ import annotations

from impl._core import AppendRequest, AppendResponse, ReadState

from ._harness import Net, Sent


def _read_round(sent: list[Sent]) -> list[Sent]:
    """_read_round: the heartbeats (empty appends) among ``sent`` that carry a read ctx."""
    return [
        s
        for s in sent
        if isinstance(s.message, AppendRequest) and not s.message.entries and s.message.read_ctx
    ]


def _leader_with_write() -> Net:
    net = Net(3)
    net.elect("n1")
    net.propose(b"a")
    net.run()
    assert net["n1"].commit_index == 1  # "a" (no sentinel: the log was empty at election)
    return net


def test_reads_arriving_during_a_round_share_one_next_round() -> None:
    """Reference: thesis 6.4 — N reads waiting behind a round need one more round, not N."""
    net = _leader_with_write()
    leader = net["n1"]
    leader.read_index(0)
    net.flush("n1")  # round 1 leaves the leader
    first = _read_round(list(net.queue))
    assert [s.dst for s in first] == ["n2", "n3"]
    before = len(net.sent)
    for i in range(1, 51):
        leader.read_index(i)
    rd = net.flush("n1")
    assert rd is None or not rd.messages  # no heartbeat per read while round 1 is in flight
    net.run()
    reads = net.nodes["n1"].reads
    assert reads == [ReadState(i, 1) for i in range(51)]
    rounds = _read_round(net.sent[before:])
    # exactly one follow-up round (one heartbeat per follower) served all 50 reads
    assert [s.dst for s in rounds] == ["n2", "n3"]
    assert {s.message.read_ctx for s in rounds if isinstance(s.message, AppendRequest)} == {51}


def test_read_arriving_during_a_round_waits_for_the_next_round() -> None:
    """Reference: thesis 6.4 — a read may not use a round that started before it arrived.

    Round 1 is acknowledged by a full quorum after read 2 arrived. Releasing
    read 2 on that round would serve it on a confirmation sent before it
    existed; it must stay pending until the round that starts afterwards is
    acknowledged.
    """
    net = _leader_with_write()
    leader = net["n1"]
    leader.read_index(1)
    net.flush("n1")
    round1 = list(net.queue)
    net.queue.clear()
    assert len(_read_round(round1)) == 2
    leader.read_index(2)  # arrives while round 1 is in flight
    net.flush("n1")
    assert not net.queue  # round 1 is still out: no new round yet
    # The followers answer round 1; its acks reach the leader.
    for s in round1:
        net.nodes[s.dst].core.receive(s.message)
        net.flush(s.dst)
    acks = list(net.queue)
    net.queue.clear()
    assert {type(s.message) for s in acks} == {AppendResponse}
    for s in acks:
        leader.receive(s.message)
        net.flush("n1")
    assert [r.request_id for r in net.nodes["n1"].reads] == [1]  # read 2 did not join round 1
    round2 = _read_round(list(net.queue))
    assert [s.dst for s in round2] == ["n2", "n3"]  # the round for read 2 started only now
    net.run()
    assert [r.request_id for r in net.nodes["n1"].reads] == [1, 2]


def test_read_arriving_during_a_round_is_not_released_by_a_deposed_round() -> None:
    """Reference: thesis 6.4 — the follow-up round, not the old one, decides a late read.

    After round 1 is out, a newer leader takes over at the followers, so the
    follow-up round is refused (a higher term comes back). A read that had
    joined round 1 would have been released by its acks, although the
    followers already belonged to another leader when the follow-up round
    reached them.
    """
    net = _leader_with_write()
    leader = net["n1"]
    leader.read_index(1)
    net.flush("n1")
    round1 = list(net.queue)
    net.queue.clear()
    leader.read_index(2)
    net.flush("n1")
    for s in round1:  # both followers acknowledge round 1 ...
        net.nodes[s.dst].core.receive(s.message)
        net.flush(s.dst)
    acks = list(net.queue)
    net.queue.clear()
    # ... and then n2 wins an election without n1 (n1 cut off from them).
    net.isolate("n1")
    for follower in ("n2", "n3"):
        net[follower].check_quorum_timeout()  # their lease on n1 ends (thesis 9.6)
    net.timeout("n2")
    net.run()
    assert net["n2"].role.value == "leader"
    for s in acks:  # round 1's acks arrive late at n1 (the term was current when sent)
        leader.receive(s.message)
        net.flush("n1")
    released = [r.request_id for r in net.nodes["n1"].reads]
    assert released == [1]  # read 1 arrived before round 1: linearizable at that point
    net.heal()
    net.run()
    # n1 learned of the newer term: read 2 was aborted, never served by the old leader
    assert [r.request_id for r in net.nodes["n1"].reads] == [1]
    assert net.nodes["n1"].aborted == [2]
