"""step: the one place that owns every transition of a node (h11 style).

`step(state, input)` validates the input, adopts a higher term if the input carries one (the
seed's term marker: any message but a prevote request), dispatches to the handler, and derives
the outputs the environment must act on: what to persist, entries newly committed, messages,
answered reads. A disabled input returns the original state, no outputs and the reason.
"""

from __future__ import annotations

from dataclasses import replace
from typing import assert_never

from spec._election import on_election_timeout, on_vote_request, on_vote_response
from spec._inputs import (
    CheckQuorum,
    ClientRequest,
    ElectionTimeout,
    HeartbeatDue,
    Input,
    ReadRequest,
    Receive,
    Restart,
    SendAppend,
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
    durable = new.durable()
    persist = durable if durable != state.durable() else None
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
            return Transition(initial_node(state.id, state.voters, durable))
        case _:
            assert_never(event)


def _check_quorum(state: NodeState) -> NodeState:
    """_check_quorum: a leader cut off from a quorum for an election timeout steps down.

    On other roles the tick expires the leader lease, so the node grants prevotes again.
    """
    if state.role is not Role.LEADER:
        return replace(state, heard_from_leader=False)
    if not is_quorum(state.recent_active, state.voters):
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
            return on_append_request(state, message)
        case AppendResponse():
            return on_append_response(state, message)
        case _:
            assert_never(message)
