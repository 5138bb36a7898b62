"""Readable counterexamples: a run as a numbered table of steps, not a raw dump.

Every engine that finds a violation prints it through `format_run`, so a failure from
Hypothesis, the explorer or a trace replay reads the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import assert_never

from spec import (
    Action,
    AddLearner,
    AppendRequest,
    AppendResponse,
    AppendSentinel,
    CheckQuorum,
    ClientRequest,
    ClusterState,
    Crash,
    Deliver,
    Drop,
    Duplicate,
    ElectionTimeout,
    Heal,
    HeartbeatDue,
    Message,
    NodeInput,
    NodeState,
    Partition,
    PromoteLearner,
    ReadRequest,
    Recover,
    RemoveServer,
    Role,
    SendAppend,
    TransferLeadership,
    VoteRequest,
    VoteResponse,
)

__all__ = ["describe_action", "describe_message", "describe_node", "format_run"]

_ROLE = {Role.FOLLOWER: "F", Role.PRECANDIDATE: "P", Role.CANDIDATE: "C", Role.LEADER: "L"}


def describe_message(message: Message) -> str:
    """describe_message is a one-line, human-sized rendering of a message."""
    route = f"{message.src}->{message.dst} t{message.term}"
    match message:
        case VoteRequest():
            kind = "PreVote" if message.prevote else "Vote"
            flag = " transfer" if message.transfer else ""
            last = f"last=({message.last_log_index},{message.last_log_term})"
            return f"{kind}Req {route} {last}{flag}"
        case VoteResponse():
            kind = "PreVote" if message.prevote else "Vote"
            verdict = "grant" if message.granted else "deny"
            return f"{kind}Resp {route} {verdict} for t{message.request_term}"
        case AppendRequest():
            terms = ",".join(str(entry.term) for entry in message.entries)
            kind = "TimeoutNow" if message.timeout_now else "Append"
            return (
                f"{kind} {route} prev=({message.prev_index},{message.prev_term}) "
                f"entries=[{terms}] commit={message.leader_commit} ctx={message.read_ctx}"
            )
        case AppendResponse():
            verdict = (
                f"ok match={message.match_index}"
                if message.success
                else f"reject hint={message.hint_index}"
            )
            return f"AppendResp {route} {verdict} ctx={message.read_ctx}"
        case _:
            assert_never(message)


def describe_action(action: Action) -> str:
    """describe_action is a one-line rendering of a cluster action."""
    match action:
        case NodeInput(node=node, input=event):
            match event:
                case ElectionTimeout():
                    what = "election timeout"
                case HeartbeatDue():
                    what = "heartbeat"
                case CheckQuorum():
                    what = "check quorum"
                case ClientRequest(payload=payload):
                    what = f"propose {payload!r}"
                case ReadRequest(read_id=read_id):
                    what = f"read #{read_id}"
                case SendAppend(peer=peer, prev_index=prev, count=count):
                    what = f"send append to {peer} prev={prev} count={count}"
                case AddLearner(node=peer):
                    what = f"add learner {peer}"
                case PromoteLearner(node=peer):
                    what = f"promote learner {peer}"
                case RemoveServer(node=peer):
                    what = f"remove server {peer}"
                case AppendSentinel():
                    what = "append a sentinel of its term"
                case TransferLeadership(target=peer):
                    what = f"transfer leadership to {peer}"
                case _:
                    assert_never(event)
            return f"node {node}: {what}"
        case Deliver(message=message):
            return f"deliver {describe_message(message)}"
        case Drop(message=message):
            return f"drop {describe_message(message)}"
        case Duplicate(message=message):
            return f"duplicate {describe_message(message)}"
        case Crash(node=node):
            return f"crash node {node}"
        case Recover(node=node):
            return f"recover node {node}"
        case Partition(groups=groups):
            return "partition " + " | ".join(
                ",".join(str(i) for i in sorted(group)) for group in groups
            )
        case Heal():
            return "heal partition"
        case _:
            assert_never(action)


def describe_node(node: NodeState, crashed: bool = False) -> str:
    """describe_node: role, term, vote, log terms and commit in a few characters.

    `L t2 v0 [1,2] c1` is a leader in term 2 that voted for 0, with entries of terms 1 and 2,
    of which 1 is committed; `x` marks a crashed node.
    """
    vote = "-" if node.voted_for is None else str(node.voted_for)
    terms = ",".join(str(entry.term) for entry in node.log)
    mark = "x" if crashed else ""
    return f"{mark}{_ROLE[node.role]} t{node.term} v{vote} [{terms}] c{node.commit}"


def format_run(
    initial: ClusterState,
    steps: Sequence[tuple[Action, ClusterState]],
    violation: str | None = None,
) -> str:
    """format_run renders a run as a numbered table: step, action, then each node's state."""
    headers = ["#", "action", *(f"node {i}" for i in range(initial.size))]
    rows = [["0", "(initial)", *_node_cells(initial)]]
    for number, (action, state) in enumerate(steps, start=1):
        rows.append([str(number), describe_action(action), *_node_cells(state)])
    widths = [max(len(row[col]) for row in [headers, *rows]) for col in range(len(headers))]
    lines = [
        " | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in [headers, *rows]
    ]
    lines.insert(1, "-+-".join("-" * width for width in widths))
    if violation is not None:
        lines.append(f"violated: {violation}")
    return "\n".join(lines)


def _node_cells(state: ClusterState) -> list[str]:
    return [describe_node(node, node.id in state.crashed) for node in state.nodes]
