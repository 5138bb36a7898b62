"""Quorums for every cluster size, including the even sizes the seed got wrong (section 5.2)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from spec import Crash, Role, initial_cluster, is_quorum, quorum_match, quorum_size
from tests.spec._helpers import deliver_all, drop_blocked, elect, entries, leader, run, timeout


@pytest.mark.parametrize(
    ("voters", "size"), [(1, 1), (2, 2), (3, 2), (4, 3), (5, 3), (6, 4), (7, 4)]
)
def test_quorum_size_is_a_strict_majority(voters: int, size: int) -> None:
    """quorum_size(n) = n // 2 + 1, so any two quorums intersect.

    Reference: section 5.2 ("a majority of the servers in the full cluster").
    """
    assert quorum_size(voters) == size
    assert 2 * size > voters


def test_quorum_size_needs_a_voter() -> None:
    """A cluster without voters has no quorum at all.

    Reference: section 5.2.
    """
    with pytest.raises(ValueError, match="voter"):
        quorum_size(0)


def test_is_quorum_counts_distinct_voters_only() -> None:
    """Duplicates and non-voters do not make a majority.

    Reference: section 5.2 (a majority of servers).
    """
    voters = (0, 1, 2, 3)
    assert not is_quorum([0, 0, 1, 1], voters)
    assert not is_quorum([0, 1, 9], voters)
    assert is_quorum([0, 1, 2], voters)


@pytest.mark.parametrize(("size", "alive"), [(2, 1), (4, 2)])
def test_even_clusters_cannot_elect_without_a_true_majority(size: int, alive: int) -> None:
    """With half the servers down, 2 and 4 node clusters elect nobody (the seed's len >> 1
    threshold would elect with 0 and 2 votes respectively).

    Reference: section 5.2; DESIGN (seed weaknesses not to copy).
    """
    cluster = initial_cluster(size)
    cluster = run(cluster, *(Crash(node) for node in range(alive, size)))
    for _ in range(3):
        cluster = drop_blocked(deliver_all(timeout(cluster, 0)))
        assert all(s.role is not Role.LEADER for s in cluster.nodes)
    assert cluster.nodes[0].term <= 1


@pytest.mark.parametrize("size", [2, 4, 6])
def test_even_clusters_elect_with_all_servers_up(size: int) -> None:
    """All servers up: an even cluster elects normally.

    Reference: section 5.2.
    """
    cluster = elect(initial_cluster(size), size - 1)
    assert cluster.nodes[size - 1].term == 1


def test_four_nodes_elect_with_three_alive() -> None:
    """Three of four is a majority.

    Reference: section 5.2.
    """
    cluster = run(initial_cluster(4), Crash(3))
    assert elect(cluster, 0).nodes[0].role is Role.LEADER


@pytest.mark.parametrize(("size", "expected"), [(3, 2), (4, 2), (5, 2)])
def test_quorum_match_is_the_majority_replicated_index(size: int, expected: int) -> None:
    """The commit candidate is the largest index stored by a majority (leader included).

    Reference: section 5.3 and Figure 2 ("a majority of matchIndex[i] >= N").
    """
    lead = leader(size, term=1, log=entries(1, 1, 1), commit=3)  # leader holds 3
    match = [3] + [0] * (size - 1)
    match[1] = 2
    if size >= 4:
        match[2] = 2
    lead = replace(lead, match_index=tuple(match))
    assert quorum_match(lead) == expected
