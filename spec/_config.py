"""Cluster configurations: who votes and who only listens (Raft thesis chapter 4).

A configuration is a pair (voters, learners). Voters elect leaders and form quorums; learners
(etcd's name; the thesis's "non-voting members", section 4.2.1) receive the log so a new server
can catch up before it counts, but they are never asked for votes, never counted in a quorum
and never start an election. Both are sorted tuples, so a configuration is a totally ordered
value that can live inside a log entry.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Config"]


@dataclass(frozen=True, slots=True, order=True)
class Config:
    """Config is one cluster configuration; ids are sorted and the two sets are disjoint."""

    voters: tuple[int, ...]
    learners: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if not self.voters:
            raise ValueError("a configuration needs at least one voter")
        if tuple(sorted(set(self.voters))) != self.voters:
            raise ValueError(f"voters {self.voters} are not sorted and distinct")
        if tuple(sorted(set(self.learners))) != self.learners:
            raise ValueError(f"learners {self.learners} are not sorted and distinct")
        if set(self.voters) & set(self.learners):
            raise ValueError("a server is either a voter or a learner, not both")

    @property
    def members(self) -> tuple[int, ...]:
        """members is every server the leader replicates to: voters and learners, sorted."""
        return tuple(sorted(self.voters + self.learners))

    def with_learner(self, node: int) -> Config:
        """with_learner adds `node` as a learner (thesis 4.2.1: catch up before voting)."""
        return Config(self.voters, tuple(sorted((*self.learners, node))))

    def promoted(self, node: int) -> Config:
        """promoted turns learner `node` into a voter: one voter more (thesis 4.1)."""
        learners = tuple(i for i in self.learners if i != node)
        return Config(tuple(sorted((*self.voters, node))), learners)

    def without(self, node: int) -> Config:
        """without removes `node`, voter or learner: at most one voter less (thesis 4.1)."""
        voters = tuple(i for i in self.voters if i != node)
        learners = tuple(i for i in self.learners if i != node)
        return Config(voters, learners)
