"""step: the one place that owns every transition of a node (h11 style).

`step(state, input)` validates the input, adopts a higher term if the input carries one (the
seed's term marker: any message but a prevote request), dispatches to the handler, and derives
the outputs the environment must act on: what to persist, entries newly committed, messages,
answered reads. A disabled input returns the original state, no outputs and the reason.
"""

from __future__ import annotations

from dataclasses import replace
from typing import assert_never

from spec._election import (
    on_election_timeout,
    on_timeout_now,
    on_vote_request,
    on_vote_response,
)
from spec._inputs import (
    AddLearner,
    AppendSentinel,
    CheckQuorum,
    ClientRequest,
    ElectionTimeout,
    HeartbeatDue,
    Input,
    PromoteLearner,
    ReadRequest,
    Receive,
    RemoveServer,
    Restart,
    SendAppend,
    TransferLeadership,
)
from spec._inuse import voters_in_use
from spec._membership import (
    on_add_learner,
    on_append_sentinel,
    on_promote_learner,
    on_remove_server,
    retire_if_removed,
)
from spec._messages import AppendRequest, AppendResponse, Message, VoteRequest, VoteResponse
from spec._outputs import StepResult
from spec._quorum import is_quorum
from spec._reads import on_read_request
from spec._replication import (
    on_append_request,
    on_append_response,
    on_client_request,
    on_heartbeat_due,
    on_send_append,
)
from spec._state import NodeState, Role, initial_node
from spec._transfer import after_append_response, on_transfer_leadership
from spec._transition import DisabledError, Transition, step_down

__all__ = ["step"]


def step(state: NodeState, event: Input) -> StepResult:
    """step applies one input to one node and returns the new state and its outputs."""
    try:
        transition = _dispatch(state, event)
    except DisabledError as refusal:
        return StepResult(state=state, rejected=refusal.reason)
    new = transition.state
    if isinstance(event, Restart):
        # Restarting re-applies the durable committed prefix to a fresh state machine.
        return StepResult(state=new, committed=new.log[: new.commit])
    # what `new.durable() != state.durable()` says, without building two Durable values a
    # step (the log comparison is by identity first: a step that keeps the log shares it)
    changed = (
        new.term != state.term
        or new.voted_for != state.voted_for
        or new.commit != state.commit
        or (new.log is not state.log and (len(new.log) != len(state.log) or new.log != state.log))
    )
    persist = new.durable() if changed else None
    committed = new.log[state.commit : new.commit] if new.commit > state.commit else ()
    return StepResult(
        state=new,
        persist=persist,
        messages=transition.messages,
        committed=committed,
        reads=transition.reads,
    )


def _dispatch(state: NodeState, event: Input) -> Transition:
    match event:
        case ElectionTimeout():
            return on_election_timeout(state)
        case HeartbeatDue():
            return on_heartbeat_due(state)
        case CheckQuorum():
            return Transition(_check_quorum(state))
        case Receive(message=message):
            return _receive(state, message)
        case ClientRequest(payload=payload):
            return on_client_request(state, payload)
        case ReadRequest(read_id=read_id):
            return on_read_request(state, read_id)
        case SendAppend(peer=peer, prev_index=prev_index, count=count):
            return on_send_append(state, peer, prev_index, count)
        case Restart(durable=durable):
            restarted = initial_node(state.id, state.voters, durable)
            if state.initial_config is not None:
                restarted = replace(restarted, initial_config=state.initial_config)
            return Transition(restarted)
        case AddLearner(node=node):
            return on_add_learner(state, node)
        case PromoteLearner(node=node):
            return on_promote_learner(state, node)
        case RemoveServer(node=node):
            return on_remove_server(state, node)
        case AppendSentinel():
            return on_append_sentinel(state)
        case TransferLeadership(target=target):
            return on_transfer_leadership(state, target)
        case _:
            assert_never(event)


def _check_quorum(state: NodeState) -> NodeState:
    """_check_quorum: a leader cut off from a quorum for an election timeout steps down.

    On other roles the tick expires the leader lease, so the node grants prevotes again. The
    quorum is of the voters in use; on a leader the tick also ends a leadership transfer that
    has not completed within an election timeout (thesis 3.10).
    """
    if state.role is not Role.LEADER:
        return replace(state, heard_from_leader=False)
    if state.transfer_target is not None:
        state = replace(state, transfer_target=None)
    if not is_quorum(state.recent_active, voters_in_use(state)):
        return step_down(state, state.term)
    return replace(state, recent_active=frozenset({state.id}))


def _validate(state: NodeState, message: Message) -> None:
    if message.dst != state.id:
        raise DisabledError(f"message for node {message.dst} delivered to node {state.id}")
    if message.src == state.id or message.src not in state.voters:
        raise DisabledError(f"sender {message.src} is not a peer of node {state.id}")
    if message.term < 0:
        raise DisabledError(f"negative term {message.term}")
    match message:
        case AppendRequest():
            if message.prev_index < 0 or message.leader_commit < 0:
                raise DisabledError("negative index in append")
            if any(entry.term > message.term for entry in message.entries):
                raise DisabledError("append carries an entry from a future term")
        case AppendResponse():
            if message.match_index < 0 or message.hint_index < 0:
                raise DisabledError("negative index in append response")
        case VoteRequest() | VoteResponse():
            pass
        case _:
            assert_never(message)


def _receive(state: NodeState, message: Message) -> Transition:
    _validate(state, message)
    adopts = not (isinstance(message, VoteRequest) and message.prevote)
    if adopts and message.term > state.term:
        state = step_down(state, message.term)
    match message:
        case VoteRequest():
            return on_vote_request(state, message)
        case VoteResponse():
            return on_vote_response(state, message)
        case AppendRequest():
            accepted = on_append_request(state, message)
            if message.timeout_now and _succeeded(accepted):
                return accepted.then(on_timeout_now(accepted.state))
            return accepted
        case AppendResponse():
            handled = on_append_response(state, message)
            handled = Transition(retire_if_removed(handled.state), handled.messages, handled.reads)
            return handled.then(after_append_response(handled.state, message))
        case _:
            assert_never(message)


def _succeeded(transition: Transition) -> bool:
    """_succeeded: the follower accepted the append (its reply is the last message)."""
    reply = transition.messages[-1] if transition.messages else None
    return isinstance(reply, AppendResponse) and reply.success
