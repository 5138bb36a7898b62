"""Log replication (Raft paper section 5.3): consistency check, truncation, commit, back-off."""

from __future__ import annotations

from spec import (
    AppendRequest,
    AppendResponse,
    ClientRequest,
    NodeInput,
    Receive,
    SendAppend,
    initial_cluster,
    step,
)
from tests.spec._helpers import (
    act,
    append,
    deliver_all,
    elect,
    entries,
    feed,
    leader,
    node_with,
    propose,
    sync,
)


def _reply(state_result_messages: tuple[object, ...]) -> AppendResponse:
    (reply,) = state_result_messages
    assert isinstance(reply, AppendResponse)
    return reply


def test_consistency_check_rejects_a_mismatched_previous_entry() -> None:
    """A follower whose entry at prev_index has another term refuses and keeps its log.

    Reference: section 5.3 ("If the follower does not find an entry in its log with the same
    index and term, then it refuses the new entries"); Figure 2, AppendEntries rule 2.
    """
    state = node_with(1, 3, term=3, log=entries(1, 2), commit=1)
    result = step(state, Receive(append(0, 1, 3, prev_index=2, prev_term=3, new=entries(3))))
    assert not _reply(result.messages).success
    assert result.state.log == state.log and result.persist is None


def test_consistency_check_rejects_a_missing_previous_entry_with_a_length_hint() -> None:
    """A short follower refuses and hints one past its last entry.

    Reference: section 5.3 (consistency check and the back-off optimisation).
    """
    state = node_with(1, 3, term=3, log=entries(1, 1))
    reply = _reply(step(state, Receive(append(0, 1, 3, prev_index=7, prev_term=3))).messages)
    assert not reply.success and reply.hint_index == 3


def test_matching_entries_are_not_truncated_by_a_stale_append() -> None:
    """A delayed append carrying entries we already have does not shorten our log.

    Reference: section 5.3 and Figure 2, AppendEntries rule 3 ("If an existing entry conflicts
    with a new one ... delete the existing entry and all that follow it": only on a conflict).
    """
    log = entries(1, 1, 1)
    state = node_with(1, 3, term=1, log=log)
    result = step(state, Receive(append(0, 1, 1, prev_index=0, new=log[:1])))
    assert result.state.log == log
    assert _reply(result.messages).match_index == 1


def test_a_real_conflict_truncates_from_the_first_conflicting_entry() -> None:
    """An uncommitted entry of a deposed leader is replaced by the current leader's.

    Reference: section 5.3 ("the leader handles inconsistencies by forcing the followers' logs to
    duplicate its own"); Figure 2, AppendEntries rules 3 and 4.
    """
    state = node_with(1, 3, term=3, log=entries(1, 1, 2, 2), commit=2)
    new = entries(1, 1, 3)[2:]
    result = step(state, Receive(append(0, 1, 3, prev_index=2, prev_term=1, new=new)))
    assert result.state.log == entries(1, 1, 3)
    assert result.persist is not None and result.persist.log == entries(1, 1, 3)


def test_a_conflict_at_a_committed_index_is_refused() -> None:
    """No append may overwrite a committed entry; such an input is disabled and changes nothing.

    Reference: section 5.4 (State Machine Safety: a committed entry is never replaced).
    """
    state = node_with(1, 3, term=3, log=entries(1, 2), commit=2)
    result = step(state, Receive(append(0, 1, 3, prev_index=1, prev_term=1, new=entries(3))))
    assert result.rejected and result.state is state and result.messages == ()


def test_follower_commit_is_capped_by_the_last_entry_the_append_vouches_for() -> None:
    """commitIndex = min(leaderCommit, index of last new entry): a heartbeat with prev_index 2
    commits no further than 2, even if the follower holds more (unverified) entries.

    Reference: Figure 2, AppendEntries rule 5.
    """
    state = node_with(1, 3, term=2, log=entries(1, 1, 1, 1, 1))
    hb = step(state, Receive(append(0, 1, 2, prev_index=2, prev_term=1, leader_commit=5)))
    assert hb.state.commit == 2 and len(hb.committed) == 2
    one = step(
        state,
        Receive(
            append(0, 1, 2, prev_index=2, prev_term=1, new=entries(1, 1, 1)[2:], leader_commit=5)
        ),
    )
    assert one.state.commit == 3
    behind = step(state, Receive(append(0, 1, 2, prev_index=5, prev_term=1, leader_commit=4)))
    assert behind.state.commit == 4


def test_follower_commit_never_moves_back() -> None:
    """An older append with a smaller leaderCommit does not lower the commit index.

    Reference: section 5.3 (committed entries are durable; PySyncObj #166/#167).
    """
    state = node_with(1, 3, term=2, log=entries(1, 1, 1), commit=3)
    result = step(state, Receive(append(0, 1, 2, prev_index=3, prev_term=1, leader_commit=1)))
    assert result.state.commit == 3


def test_fast_back_off_catches_up_a_far_behind_follower_in_two_round_trips() -> None:
    """A follower missing 40 entries is caught up in two round trips, not forty.

    Reference: section 5.3 ("the follower can include the term of the conflicting entry and the
    first index it stores for that term ... one AppendEntries RPC will be required for each term
    with conflicting entries, rather than one RPC per entry").
    """
    lead = leader(3, term=1, log=entries(*([1] * 40)), commit=40)
    follower = node_with(1, 3, term=2)
    trips = 0
    while lead.match_index[1] < 40:
        trips += 1
        (request,) = step(lead, SendAppend(1)).messages
        reply = step(follower, Receive(request))
        follower = reply.state
        lead = feed(lead, Receive(reply.messages[0]))
    assert trips == 2
    assert follower.log == lead.log


def test_fast_back_off_skips_a_whole_conflicting_term() -> None:
    """A follower holding 20 entries of a deposed leader's term costs one trip for that term.

    Reference: section 5.3 (one RPC per conflicting term).
    """
    lead = leader(3, term=3, log=entries(*([1] * 10), *([3] * 20)), commit=10)
    follower = node_with(1, 3, term=3, log=entries(*([1] * 10), *([2] * 20)), commit=10)
    trips = 0
    while lead.match_index[1] < len(lead.log):
        trips += 1
        (request,) = step(lead, SendAppend(1)).messages
        reply = step(follower, Receive(request))
        follower = reply.state
        lead = feed(lead, Receive(reply.messages[0]))
        assert trips < 5
    assert trips <= 3
    assert follower.log == lead.log


def test_a_hint_never_sends_the_leader_below_what_is_known_to_match() -> None:
    """A reordered old rejection cannot push nextIndex below matchIndex + 1.

    Reference: section 5.3 (nextIndex back-off) and PySyncObj #166 (indexes going backwards).
    """
    lead = leader(3, term=1, log=entries(1, 1, 1), commit=3)
    ok = AppendResponse(1, 0, 2, True, 4, 0, 0)
    lead = feed(lead, Receive(ok))
    old = AppendResponse(1, 0, 2, False, 0, 1, 0)
    after = feed(lead, Receive(old))
    assert after.match_index[1] == 4 and after.next_index[1] == 5


def test_match_index_never_decreases_with_reordered_acks() -> None:
    """A delayed success with a smaller match index does not lower progress.

    Reference: section 5.3; PySyncObj #166.
    """
    lead = leader(3, term=1, log=entries(1, 1, 1), commit=3)
    lead = feed(lead, Receive(AppendResponse(1, 0, 2, True, 4, 0, 0)))
    after = feed(lead, Receive(AppendResponse(1, 0, 2, True, 2, 0, 0)))
    assert after.match_index[1] == 4


def test_the_leader_commits_its_entry_once_a_majority_stores_it() -> None:
    """An entry of the current term on a majority is committed and handed to apply.

    Reference: section 5.3 ("A log entry is committed once the leader that created the entry
    has replicated it on a majority of the servers").
    """
    cluster = sync(elect(initial_cluster(5), 0), 0)
    cluster = propose(cluster, 0, b"x")
    for peer in (1, 2):
        cluster = act(cluster, NodeInput(0, SendAppend(peer)))
    cluster = deliver_all(cluster)
    assert cluster.nodes[0].commit == 1
    assert [s.log[:1] for s in cluster.nodes[3:]] == [(), ()]


def test_a_minority_does_not_commit() -> None:
    """With only one of four followers, a five-node leader does not commit.

    Reference: section 5.3 (majority of the servers).
    """
    cluster = sync(elect(initial_cluster(5), 0), 0)
    cluster = deliver_all(act(propose(cluster, 0, b"x"), NodeInput(0, SendAppend(1))))
    assert cluster.nodes[0].commit == 0 and cluster.nodes[1].log[0].payload == b"x"


def test_commit_reaches_followers_and_is_applied_there() -> None:
    """Followers learn the commit index from the next append and output the entries to apply.

    Reference: section 5.3 ("Once a follower learns that a log entry is committed, it applies
    the entry to its local state machine").
    """
    cluster = sync(propose(sync(elect(initial_cluster(3), 0), 0), 0, b"a", b"b"), 0)
    assert all(s.commit == 2 for s in cluster.nodes)
    assert all(s.log == cluster.nodes[0].log for s in cluster.nodes)


def test_client_requests_only_go_to_the_leader_and_append() -> None:
    """A leader only appends to its log; a follower refuses proposals.

    Reference: section 5.3 (Leader Append-Only, Figure 3).
    """
    lead = leader(3, term=1)
    after = feed(lead, ClientRequest(b"p"))
    assert after.log[: len(lead.log)] == lead.log and after.log[-1].payload == b"p"
    assert step(node_with(1), ClientRequest(b"p")).rejected


def test_send_append_ranges_are_chosen_by_the_caller() -> None:
    """The leader may send any consistent range: batching and pipelining are spec steps.

    Reference: section 5.3 (AppendEntries carries any number of entries; the consistency check
    makes every range safe).
    """
    lead = leader(3, term=1, log=entries(1, 1, 1, 1), commit=4)
    (msg,) = step(lead, SendAppend(2, prev_index=1, count=2)).messages
    assert isinstance(msg, AppendRequest)
    assert (msg.prev_index, msg.prev_term, len(msg.entries)) == (1, 1, 2)
    assert msg.leader_commit == 4 and msg.term == 2
