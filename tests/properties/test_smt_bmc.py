"""Bounded model checking of Election Safety and Log Matching on concrete clusters.

Unit tests use small depths; `python -m properties.smt` runs depth 8 for 3 and 4 nodes.
Reference: Raft paper section 5.2 (Election Safety) and section 5.3 (Log Matching).
"""

from __future__ import annotations

from dataclasses import fields

from properties.smt import ELECTION_SAFETY, LOG_MATCHING, Encoding, Flaw, bmc
from spec import (
    ClientRequest,
    ClusterState,
    Deliver,
    ElectionTimeout,
    NodeInput,
    Role,
    cluster_step,
    initial_cluster,
)


def test_no_violation_within_small_depth_three_nodes() -> None:
    """Reference: section 5.2 and 5.3; the spec encoding is safe for every 5-step schedule."""
    result = bmc(3, 5)
    assert result.ok, result.counterexample
    assert result.depth_reached == 5
    assert result.properties == (ELECTION_SAFETY, LOG_MATCHING)
    assert "no violation" in result.summary()


def test_no_violation_within_small_depth_four_nodes() -> None:
    """Reference: section 5.2; even cluster sizes must be covered (the seed's bug)."""
    result = bmc(4, 4)
    assert result.ok, result.counterexample


def test_vote_twice_breaks_election_safety() -> None:
    """Reference: section 5.2, "each server will vote for at most one candidate in a term"."""
    result = bmc(3, 6, encoding=Encoding.with_flaws(Flaw.VOTE_TWICE))
    assert not result.ok
    assert result.violated == ELECTION_SAFETY
    assert result.depth_reached == 5  # the shortest double election takes six steps
    assert result.counterexample is not None
    assert "election safety violated after 6 steps" in result.counterexample
    assert result.counterexample.count("leader") >= 2


def test_seed_quorum_breaks_election_safety_on_four_nodes() -> None:
    """The seed's threshold elects with 2 of 4 votes, so two leaders share a term."""
    result = bmc(4, 6, encoding=Encoding.with_flaws(Flaw.SEED_QUORUM), shortest=False)
    assert not result.ok
    assert result.violated == ELECTION_SAFETY
    assert result.counterexample is not None


def test_leader_without_quorum_breaks_election_safety() -> None:
    """Reference: section 5.2, a candidate wins only with votes from a majority.

    Four nodes: two candidates of one term each win on one other node's vote.
    """
    result = bmc(4, 6, encoding=Encoding.with_flaws(Flaw.LEADER_ON_FIRST_VOTE), shortest=False)
    assert not result.ok
    assert result.violated == ELECTION_SAFETY


def _deliver(cluster: ClusterState, kind: str, **want: object) -> ClusterState:
    for message in cluster.network:
        if type(message).__name__ != kind:
            continue
        if all(getattr(message, name) == value for name, value in want.items()):
            result = cluster_step(cluster, Deliver(message))
            assert result.rejected is None, result.rejected
            return result.state
    raise AssertionError(f"no {kind} {want} in flight")


def _node(cluster: ClusterState, node: int, event: ElectionTimeout | ClientRequest) -> ClusterState:
    result = cluster_step(cluster, NodeInput(node, event))
    assert result.rejected is None, result.rejected
    return result.state


def _two_leaders_with_diverging_logs() -> ClusterState:
    """Node 1 leads term 1 with log [1]; node 0 then leads term 2 with log [2, 2]."""
    c = _node(initial_cluster(3), 1, ElectionTimeout())
    c = _deliver(c, "VoteRequest", src=1, dst=2, prevote=True)
    c = _deliver(c, "VoteResponse", src=2, dst=1, prevote=True)
    c = _deliver(c, "VoteRequest", src=1, dst=2, prevote=False)
    c = _deliver(c, "VoteResponse", src=2, dst=1, prevote=False)
    c = _node(c, 1, ClientRequest(b"a"))
    c = _deliver(c, "VoteRequest", src=1, dst=0, prevote=False)
    c = _node(c, 0, ElectionTimeout())
    c = _deliver(c, "VoteRequest", src=0, dst=2, prevote=True)
    c = _deliver(c, "VoteResponse", src=2, dst=0, prevote=True)
    c = _deliver(c, "VoteRequest", src=0, dst=2, prevote=False)
    c = _deliver(c, "VoteResponse", src=2, dst=0, prevote=False)
    c = _node(c, 0, ClientRequest(b"b"))
    c = _node(c, 0, ClientRequest(b"c"))
    assert c.nodes[0].role is Role.LEADER and [e.term for e in c.nodes[0].log] == [2, 2]
    assert c.nodes[1].role is Role.LEADER and [e.term for e in c.nodes[1].log] == [1]
    return c


def test_log_matching_holds_from_a_reachable_state_with_the_spec_encoding() -> None:
    """Reference: section 5.3, the AppendEntries consistency check gives Log Matching."""
    result = bmc(3, 2, start=_two_leaders_with_diverging_logs(), properties=(LOG_MATCHING,))
    assert result.ok, result.counterexample


def test_skipping_the_consistency_check_breaks_log_matching() -> None:
    """Reference: section 5.3; accept an append whatever prev_term says and logs diverge."""
    result = bmc(
        3,
        2,
        encoding=Encoding.with_flaws(Flaw.SKIP_PREV_TERM_CHECK),
        start=_two_leaders_with_diverging_logs(),
        properties=(LOG_MATCHING,),
    )
    assert not result.ok
    assert result.violated == LOG_MATCHING
    assert result.counterexample is not None
    assert "[1, 2]" in result.counterexample and "[2, 2]" in result.counterexample


def test_an_alternative_transition_can_be_plugged_in() -> None:
    """A caller-supplied handler replaces the spec's (the mutant catalogue's entry point)."""
    base = Encoding.with_flaws(Flaw.LEADER_ON_FIRST_VOTE)
    names = {f.name for f in fields(Encoding)}
    assert {"start_election", "receive", "client_request", "send_append", "restart"} <= names
    custom = Encoding(name="custom", receive=base.receive)
    result = bmc(4, 6, encoding=custom, shortest=False)
    assert not result.ok
    assert result.summary().startswith("bmc[custom]")
