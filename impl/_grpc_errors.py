"""One mapping from the Node's errors to gRPC statuses, for every service that calls a Node.

A not-leader refusal carries the leader's id and address in the trailing metadata, so
clients can redirect without another round trip.
"""

from __future__ import annotations

from typing import Any

import grpc
from grpc import aio

from impl._client import LEADER_ADDR_KEY, LEADER_ID_KEY
from impl._node_errors import (
    MemberExistsError,
    MembershipBlockedError,
    NodeStoppedError,
    NotAMemberError,
    NotLeaderError,
    ProposalLostError,
    TransferInProgressError,
)

__all__ = ["abort_for"]


async def abort_for(exc: Exception, context: aio.ServicerContext[Any, Any]) -> None:
    """abort_for maps a Node error to a gRPC status (re-raises anything else)."""
    if isinstance(exc, NotLeaderError):
        metadata: list[tuple[str, str]] = []
        if exc.leader_id:
            metadata.append((LEADER_ID_KEY, exc.leader_id))
        if exc.leader_address:
            metadata.append((LEADER_ADDR_KEY, exc.leader_address))
        await context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc), tuple(metadata))
    if isinstance(exc, ProposalLostError):
        await context.abort(grpc.StatusCode.ABORTED, str(exc))
    if isinstance(exc, NodeStoppedError):
        await context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
    # A write refused during a leadership transfer was not appended: safe to retry.
    if isinstance(exc, TransferInProgressError):
        await context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
    # Membership refusals (protos/client.proto): blocked by the rules -> ABORTED (retry).
    if isinstance(exc, MembershipBlockedError):
        await context.abort(grpc.StatusCode.ABORTED, str(exc))
    if isinstance(exc, MemberExistsError):
        await context.abort(grpc.StatusCode.ALREADY_EXISTS, str(exc))
    if isinstance(exc, NotAMemberError):
        await context.abort(grpc.StatusCode.NOT_FOUND, str(exc))
    raise exc
