"""The inductive Election Safety proof: it holds, and each broken variant makes it fail.

Reference: Raft paper section 5.2 (Election Safety, one vote per term, majority quorums) and
section 5.4.1; thesis section 9.6 (prevote changes no term or vote).
"""

from __future__ import annotations

import pytest

from properties.smt import ElectionVariant, check_quorum_axiom, prove_election_safety


def test_election_safety_is_inductive_for_every_cluster_size() -> None:
    """Reference: section 5.2, "at most one candidate can win the election for a term"."""
    result = prove_election_safety()
    assert result.ok, result.summary() + "\n" + (result.counterexample or "")
    assert result.counterexample is None
    actions = {item.action for item in result.obligations}
    assert {
        "init",
        "start election",
        "grant vote",
        "count vote",
        "become leader",
        "adopt higher term",
        "restart",
        "timeout (prevote phase)",
    } <= actions
    lemmas = {item.lemma for item in result.obligations}
    assert {"election safety", "one vote per term", "leader's quorum voted for it"} <= lemmas
    # Every action is enabled somewhere, so no consecution obligation holds vacuously.
    enabled = [item for item in result.obligations if item.expected_sat]
    assert len(enabled) == 8 and all(item.ok for item in enabled)
    assert "proved" in result.summary()


@pytest.mark.parametrize(
    ("variant", "action", "lemma"),
    [
        (ElectionVariant.VOTE_TWICE, "grant vote", "one vote per term"),
        (ElectionVariant.QUORUMS_MAY_NOT_INTERSECT, "become leader", "election safety"),
        (ElectionVariant.LEADER_WITHOUT_QUORUM, "become leader", "leader's quorum voted for it"),
        (ElectionVariant.RESTART_FORGETS_VOTE, "restart", "voted_for matches the votes cast"),
        (ElectionVariant.SAME_TERM_ELECTION, "start election", "one vote per term"),
        (ElectionVariant.STALE_VOTE_COUNTED, "count vote", "counted votes were granted this term"),
    ],
)
def test_broken_variant_fails_with_a_counterexample(
    variant: ElectionVariant, action: str, lemma: str
) -> None:
    """Each variant removes one mechanism of section 5.2 (or etcd#8243); the proof must break."""
    result = prove_election_safety(variant)
    assert not result.ok
    assert any(item.action == action and item.lemma == lemma for item in result.failed)
    assert result.counterexample is not None
    text = result.counterexample
    assert "node" in text and "term" in text and "voted_for" in text and "->" in text
    assert "FAILED" in result.summary()


def test_quorum_axiom_holds_for_the_spec_quorum_size() -> None:
    """Reference: section 5.2, votes from "a majority of the servers in the full cluster"."""
    holds, why = check_quorum_axiom()
    assert holds, why


def test_seed_threshold_breaks_the_quorum_axiom_for_even_sizes() -> None:
    """The seed's `len(others) >> 1` other votes plus its own: 2 of 4 is not a majority."""
    holds, why = check_quorum_axiom(lambda n: (n - 1) // 2 + 1, sizes=range(1, 6))
    assert not holds
    assert why.startswith("n=2") or why.startswith("n=4")
    result = prove_election_safety(quorum_size=lambda n: (n - 1) // 2 + 1)
    assert not result.ok
    assert result.failed[0].lemma == "quorum intersection"
