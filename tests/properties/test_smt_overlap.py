"""The quorum-overlap lemma for membership changes: it holds one server at a time, and fails
for two servers at once or when learners are counted.

Reference: Raft thesis section 4.1 (one server at a time: "it is not possible for the cluster
to split into two independent majorities"), Figure 4.2 (a direct change of two servers), and
section 4.2.1 (learners, non-voting members, are not counted in majorities).
"""

from __future__ import annotations

import ast

import pytest

from properties.smt import ChangeVariant, check_quorum_overlap, overlap_rows
from spec import Config, is_quorum


def _sets(text: str) -> dict[str, list[int]]:
    """The counterexample table's rows, as server lists."""
    rows: dict[str, list[int]] = {}
    for line in text.splitlines():
        if "[" in line:
            name, _, servers = line.partition("[")
            rows[name.strip()] = list(ast.literal_eval("[" + servers))
    return rows


def test_one_server_changes_keep_majorities_overlapping_up_to_seven_voters() -> None:
    """Reference: thesis 4.1, every majority of C meets every majority of C +- one server."""
    result = check_quorum_overlap(max_voters=7)
    assert result.ok, result.counterexample
    assert len(result.obligations) == 7
    assert all(item.verdict == "unsat" for item in result.obligations)
    assert result.counterexample is None
    assert "proved" in result.summary()


def test_two_server_change_has_disjoint_majorities() -> None:
    """Reference: thesis Figure 4.2, a two-server change can elect two leaders."""
    result = check_quorum_overlap(ChangeVariant.TWO_SERVERS, max_voters=7)
    assert not result.ok
    assert result.counterexample is not None
    sets = _sets(result.counterexample)
    old = Config(tuple(sets["voters C"]), tuple(sets["learners of C"]))
    new = Config(tuple(sets["voters C'"]), tuple(sets["learners of C'"]))
    assert len(set(old.voters) ^ set(new.voters)) == 2
    # The spec's own quorum rule accepts both majorities, and they share no server.
    assert is_quorum(sets["majority Q of C"], old.voters)
    assert is_quorum(sets["majority Q' of C'"], new.voters)
    assert not set(sets["majority Q of C"]) & set(sets["majority Q' of C'"])


def test_counting_learners_breaks_overlap() -> None:
    """Reference: thesis 4.2.1, a learner's ack must not stand in for a voter's."""
    result = check_quorum_overlap(ChangeVariant.LEARNERS_COUNTED, max_voters=5)
    assert not result.ok
    assert result.counterexample is not None
    sets = _sets(result.counterexample)
    learners = set(sets["learners of C"]) | set(sets["learners of C'"])
    chosen = set(sets["majority Q of C"]) | set(sets["majority Q' of C'"])
    assert chosen & learners


@pytest.mark.parametrize("size", [2, 4, 6])
def test_seed_threshold_breaks_overlap_even_without_a_change_of_two(size: int) -> None:
    """The seed's `len(others) >> 1` quorum: two of four is no majority (section 5.2)."""
    result = check_quorum_overlap(max_voters=size, quorum_size=lambda n: (n - 1) // 2 + 1)
    assert not result.ok


def test_runner_has_the_lemma_and_its_firing_check() -> None:
    """`python -m properties.smt` reports the lemma and that its two-server variant fails."""
    rows = {row.check: row for row in overlap_rows(max_voters=7)}
    assert rows["overlap"].result.ok
    assert rows["overlap-fires"].result.ok
    assert rows["overlap-fires"].result.counterexample is not None
