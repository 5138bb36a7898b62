"""RaftClient.AddMember / RemoveMember / ListMembers: membership changes over gRPC.

Status codes (protos/client.proto): not the leader is FAILED_PRECONDITION with
the leader metadata; a change the rules block right now is ABORTED with the
reason (clients retry); removing a non-member is NOT_FOUND; adding a member is
ALREADY_EXISTS; a bad id or address is INVALID_ARGUMENT. A refused change
changes nothing (the core checks before it appends, thesis 4.1).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import grpc
from grpc import aio

from impl._grpc_errors import abort_for
from impl._node_errors import NodeError
from impl.generated import client_pb2

if TYPE_CHECKING:
    from impl._node import Node

__all__ = ["member_handlers"]


def _tolerant(parse: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    """_tolerant returns None for bytes that are not a protobuf (answered INVALID_ARGUMENT)."""

    def deserialize(data: bytes) -> Any:
        try:
            return parse(data)
        except Exception:  # DecodeError and friends
            return None

    return deserialize


async def _change(context: aio.ServicerContext[Any, Any], change: Callable[[], int]) -> int:
    """_change runs one membership change and turns its refusal into the contract's code."""
    try:
        return change()
    except NodeError as exc:
        await abort_for(exc, context)
        raise
    except ValueError as exc:
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))


class _MemberService:
    def __init__(self, node: Node) -> None:
        self._node = node

    async def add(
        self, pb: Any, context: aio.ServicerContext[Any, Any]
    ) -> client_pb2.AddMemberResponse:
        if not isinstance(pb, client_pb2.AddMemberRequest):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "malformed request")
        member = pb.member
        index = await _change(context, lambda: self._node.add_member(member.id, member.address))
        return client_pb2.AddMemberResponse(index=index)

    async def remove(
        self, pb: Any, context: aio.ServicerContext[Any, Any]
    ) -> client_pb2.RemoveMemberResponse:
        if not isinstance(pb, client_pb2.RemoveMemberRequest):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "malformed request")
        index = await _change(context, lambda: self._node.remove_member(pb.id))
        return client_pb2.RemoveMemberResponse(index=index)

    async def list(
        self, pb: Any, context: aio.ServicerContext[Any, Any]
    ) -> client_pb2.ListMembersResponse:
        """list answers on any node, from the config it uses (the leader's is authoritative)."""
        if not isinstance(pb, client_pb2.ListMembersRequest):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "malformed request")
        try:
            view = self._node.members()
        except NodeError as exc:
            await abort_for(exc, context)
            raise
        return client_pb2.ListMembersResponse(
            members=[
                client_pb2.MemberInfo(
                    member=client_pb2.Member(id=m.id, address=m.address),
                    voter=m.voter,
                    match_index=m.match_index,
                )
                for m in view.members
            ],
            config_index=view.index,
            committed=view.committed,
            leader=view.leader or "",
        )


def member_handlers(node: Node) -> dict[str, grpc.RpcMethodHandler[Any, Any]]:
    """member_handlers are the three RaftClient membership methods for one node."""
    svc = _MemberService(node)

    def unary(fn: Any, parse: Callable[[bytes], Any]) -> grpc.RpcMethodHandler[Any, Any]:
        return grpc.unary_unary_rpc_method_handler(
            fn,
            request_deserializer=_tolerant(parse),
            response_serializer=lambda m: m.SerializeToString(),
        )

    return {
        "AddMember": unary(svc.add, client_pb2.AddMemberRequest.FromString),
        "RemoveMember": unary(svc.remove, client_pb2.RemoveMemberRequest.FromString),
        "ListMembers": unary(svc.list, client_pb2.ListMembersRequest.FromString),
    }
