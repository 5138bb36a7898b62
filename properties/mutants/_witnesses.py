"""One hand-written witness run per mutant (see `_scenario`): the bug, step by step.

Each script is what an engineer would write to reproduce the bug report. On the correct spec
every script ends (or stops when the spec refuses a step that only the bug makes possible)
without any violation; under its mutant an invariant breaks.
"""

from __future__ import annotations

from collections.abc import Callable

from properties.mutants._scenario import Run
from spec import AppendRequest, Message

__all__ = [
    "candidate_persist_witness",
    "commit_backwards_witness",
    "double_vote_witness",
    "figure8_witness",
    "learner_quorum_witness",
    "length_only_witness",
    "prevote_term_witness",
    "prevote_vote_witness",
    "quorum_even_witness",
    "restart_vote_witness",
    "restriction_witness",
    "sentinel_witness",
    "single_server_change_witness",
    "single_server_removal_witness",
    "stale_read_witness",
    "stale_timeout_now_witness",
    "stale_vote_reply_witness",
    "truncate_witness",
]


def _entries(count: int) -> Callable[[Message], bool]:
    def where(message: Message) -> bool:
        return isinstance(message, AppendRequest) and len(message.entries) == count

    return where


def double_vote_witness(run: Run) -> None:
    """Two candidates of term 1 ask node 1; it must refuse the second (section 5.2)."""
    run.timeout(0)
    run.timeout(2)
    run.exchange("prevote", 0, 1)  # node 0: candidate of term 1
    run.exchange("prevote", 2, 1)  # node 2: candidate of term 1
    run.exchange("vote", 0, 1)  # node 0 leads term 1 with node 1's vote
    run.exchange("vote", 2, 1)  # node 1 must deny node 2


def restart_vote_witness(run: Run) -> None:
    """Node 1 votes, crashes, restarts, and is asked again in the same term (PySyncObj #84)."""
    run.timeout(0)
    run.timeout(2)
    run.exchange("prevote", 0, 1)
    run.exchange("prevote", 2, 1)
    run.exchange("vote", 0, 1)
    run.crash(1)
    run.recover(1)
    run.exchange("vote", 2, 1)


def restriction_witness(run: Run) -> None:
    """An entry committed on 0 and 1; node 2, with an empty log, asks node 1 (section 5.4.1)."""
    run.elect(0, (1,))
    run.propose(0, b"a")
    run.replicate(0, 1)  # index 1 commits on node 0
    run.deliver("vote", 0, 2)  # node 2 enters term 1
    run.check_quorum(1)  # node 1's leader lease expires
    run.elect(2, (1,))  # node 1 must refuse: node 2 lacks the committed entry


def length_only_witness(run: Run) -> None:
    """A long log of term 1 against a short log holding a committed term-2 entry."""
    run.elect(0, (1,))
    run.propose(0, b"a")
    run.propose(0, b"b")  # node 0: [1, 1], never replicated
    run.elect(1, (2,))
    run.propose(1, b"c")
    run.replicate(1, 2)  # node 1 commits [2] with node 2
    run.send(1, 0, prev=1, count=0)
    run.exchange("append", 1, 0)  # node 0 learns term 2 (and rejects the append)
    run.check_quorum(0)
    run.check_quorum(2)
    run.elect(0, (2,))  # node 2 must refuse: [1, 1] is not as up to date as [2]


def prevote_vote_witness(run: Run) -> None:
    """Node 1 voted for 0 in term 1, then grants node 2 a prevote in term 1 (thesis 9.6)."""
    run.timeout(0)
    run.exchange("prevote", 0, 1)
    run.exchange("vote", 0, 1)  # node 0 leads term 1
    run.deliver("vote", 0, 2)  # node 2 enters term 1
    run.timeout(2)
    run.exchange("prevote", 2, 1)  # a prevote grant changes nothing on node 1


def prevote_term_witness(run: Run) -> None:
    """An isolated node times out: its term must not move without a prevote quorum."""
    run.timeout(0)
    run.timeout(0)


def figure8_witness(run: Run) -> None:
    """Figure 8 on three nodes: a term-1 entry replicated to a majority in term 3, then a
    leader of term 4 without it (section 5.4.2)."""
    run.elect(0, (1,))
    run.propose(0, b"a")  # node 0: [1]
    run.elect(1, (2,))
    run.propose(1, b"b")  # node 1 leads term 2: [2]
    run.deliver("vote", 1, 0)  # node 0 hears of term 2 (and refuses the vote)
    run.elect(0, (2,))  # node 0 leads term 3: [1, 3(no-op)]
    run.replicate(0, 2, prev=0, count=1)  # [1] is now on a majority; it must not commit
    run.deliver("vote", 0, 1)  # node 1 hears of term 3
    run.check_quorum(2)
    run.elect(1, (2,))  # node 1 ([2] beats [1]) leads term 4 and would overwrite index 1


def quorum_even_witness(run: Run) -> None:
    """Four nodes: two of them are not a majority (section 5.2)."""
    run.timeout(0)
    run.exchange("prevote", 0, 1)
    run.exchange("vote", 0, 1)
    run.timeout(2)
    run.exchange("prevote", 2, 3)
    run.exchange("vote", 2, 3)


def truncate_witness(run: Run) -> None:
    """A delayed, shorter append arrives after a longer one (section 5.3)."""
    run.elect(0, (1,))
    run.propose(0, b"a")
    run.propose(0, b"b")
    run.send(0, 1, prev=0, count=1)
    run.send(0, 1, prev=0, count=2)
    run.deliver("append", 0, 1, where=_entries(2))
    run.deliver("append", 0, 1, where=_entries(1))


def commit_backwards_witness(run: Run) -> None:
    """A duplicated old append (leader_commit 0) arrives after the commit reached 1."""
    run.elect(0, (1,))
    run.propose(0, b"a")
    run.send(0, 1)
    run.duplicate("append", 0, 1)
    run.exchange("append", 0, 1)  # node 0 commits index 1
    run.replicate(0, 1)  # heartbeat: node 1 learns commit 1
    run.deliver("append", 0, 1, where=_entries(1))


def candidate_persist_witness(run: Run) -> None:
    """A candidate's RequestVote must not leave before its term and self-vote are durable."""
    run.timeout(0)
    run.exchange("prevote", 0, 1)


def sentinel_witness(run: Run) -> None:
    """A new leader behind on commit serves a read (thesis section 6.4)."""
    run.elect(0, (1,))
    run.propose(0, b"a")
    run.replicate(0, 1)  # committed on node 0, node 1 does not know yet
    run.check_quorum(1)
    run.elect(1, (2,))
    run.read(1, 1)
    run.send(1, 2)
    run.exchange("append", 1, 2)


def stale_read_witness(run: Run) -> None:
    """A leader deposed without knowing it is asked for a read (thesis section 6.4)."""
    run.elect(0, (1,))
    run.elect(1, (2,))
    run.propose(1, b"x")
    run.replicate(1, 2)
    run.read(0, 1)


def stale_vote_reply_witness(run: Run) -> None:
    """A grant for node 0's term-1 election arrives while it runs for term 2 (etcd#8243)."""
    run.timeout(0)
    run.exchange("prevote", 0, 1)  # node 0: candidate of term 1
    run.deliver("vote", 0, 1)  # node 1 grants; the reply stays in flight
    run.deliver("vote", 0, 2)  # node 2 enters term 1 too
    run.timeout(0)
    run.timeout(2)
    run.exchange("prevote", 0, 2)  # node 0: candidate of term 2
    run.exchange("prevote", 2, 1)  # node 2: candidate of term 2
    run.exchange("vote", 2, 1)  # node 2 leads term 2 with node 1's vote
    run.deliver("vote-reply", 1, 0)  # the old grant must not count for term 2


def _commit_first_entry(run: Run, leader: int, peers: tuple[int, ...]) -> None:
    """Commit an entry of the leader's term, so membership changes are enabled (2015 fix)."""
    run.propose(leader, b"a")
    for peer in peers:
        run.replicate(leader, peer)
    for peer in peers:
        run.replicate(leader, peer)  # and tell the peers the new commit index


def single_server_change_witness(run: Run) -> None:
    """The 2015 single-server change bug on voters {0,1,2,3} plus outsider 4 (thesis 4.1).

    Node 0 (term 1) adds 4 as a learner and promotes it; the promotion C = {0..4} reaches only
    node 4. Node 1 wins term 2 with 2 and 3 under {0..3} and at once removes node 0:
    D = {1,2,3} commits with node 2. Node 0 then wins term 3 under C with 3 and 4 (their logs
    end in term 1, like its own) and commits C over D. With the fix, node 1 may not append D
    before an entry of term 2 commits, which would reach node 3 and cost node 0 its vote.
    """
    run.elect(0, (1, 2))
    _commit_first_entry(run, 0, (1, 2, 3))
    run.add_learner(0, 4)
    for peer in (1, 2, 3, 4):
        run.replicate(0, peer)  # the learner config commits; node 4 catches up
    for peer in (1, 2, 3, 4):
        run.replicate(0, peer)  # everyone learns that it committed
    run.promote(0, 4)
    run.replicate(0, 4)  # C = {0..4} is on nodes 0 and 4 only
    run.check_quorum(1)
    run.check_quorum(2)
    run.check_quorum(3)
    run.timeout(1)
    run.exchange("prevote", 1, 2)
    run.exchange("prevote", 1, 3)
    run.exchange("vote", 1, 2)
    run.exchange("vote", 1, 3)  # node 1 leads term 2 under {0,1,2,3}
    run.remove(1, 0)  # D = {1,2,3}: refused by the spec (no term-2 entry committed)
    run.replicate(1, 2)  # D commits with nodes 1 and 2
    run.deliver("vote", 1, 0)  # node 0 learns term 2 (and refuses: its log is longer)
    run.check_quorum(4)
    run.timeout(0)
    run.exchange("prevote", 0, 3)
    run.exchange("prevote", 0, 4)
    run.exchange("vote", 0, 3)
    run.exchange("vote", 0, 4)  # node 0 leads term 3 under C with {0,3,4}
    run.replicate(0, 3)
    run.replicate(0, 4)  # its sentinel commits C at the index where D is committed


def learner_quorum_witness(run: Run) -> None:
    """Voters {0,1,2}, learner 3: an entry stored by the leader and the learner (4.2.1)."""
    run.elect(0, (1,))
    _commit_first_entry(run, 0, (1, 2))
    run.add_learner(0, 3)
    run.replicate(0, 1)  # the learner config commits
    run.propose(0, b"x")
    run.replicate(0, 3)  # only the learner stores it: it must not commit


def stale_timeout_now_witness(run: Run) -> None:
    """A delayed TimeoutNow reaches a target that has fallen behind (thesis 3.10, 5.4.1)."""
    run.elect(0, (1,))
    _commit_first_entry(run, 0, (1, 2))
    run.partition((0, 1), (2,))
    run.transfer(0, 2)  # TimeoutNow to node 2 is held up by the partition
    run.check_quorum(0)  # the transfer times out; node 0 takes requests again
    run.propose(0, b"b")
    run.replicate(0, 1)  # b commits on nodes 0 and 1
    run.heal()
    run.deliver("append", 0, 2, where=_timeout_now)  # node 2 campaigns for term 2
    run.exchange("vote", 2, 1)
    run.exchange("vote", 2, 0)  # both must refuse: node 2 lacks the committed b


def _timeout_now(message: Message) -> bool:
    return isinstance(message, AppendRequest) and message.timeout_now


def single_server_removal_witness(run: Run) -> None:
    """The same bug with two removals on a plain four-voter cluster (thesis 4.1).

    Node 0 (term 1) removes 3: {0,1,2}, on node 0 only. Node 1 wins term 2 with 2 and 3 and at
    once removes 0: {1,2,3}, committed with 3. Node 0 wins term 3 under {0,1,2} with node 2,
    whose log is empty, and commits its change over node 1's. The majorities {0,2} and {1,3}
    of the two configurations do not overlap.
    """
    run.elect(0, (1, 2))
    run.remove(0, 3)  # refused by the spec: no entry of term 1 has committed
    run.check_quorum(2)
    run.check_quorum(3)
    run.timeout(1)
    run.exchange("prevote", 1, 2)
    run.exchange("prevote", 1, 3)
    run.exchange("vote", 1, 2)
    run.exchange("vote", 1, 3)
    run.remove(1, 0)
    run.replicate(1, 3)
    run.deliver("vote", 1, 0)  # node 0 learns term 2
    run.timeout(0)
    run.exchange("prevote", 0, 2)
    run.exchange("vote", 0, 2)
    run.replicate(0, 2)
