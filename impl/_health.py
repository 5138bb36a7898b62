"""Operations services on a node's gRPC server: health, reflection, leadership transfer.

- grpc.health.v1.Health (the standard health protocol, so load balancers,
  Kubernetes probes and grpc_health_probe work unchanged). The overall
  service "" and each raftwright service report SERVING while the node runs
  (its driver is alive) and NOT_SERVING when it is not running (its driver
  failed, or it is stopping) while the server still answers; an unknown
  service name is NOT_FOUND, as the protocol asks. The answer is computed
  from the node at each call, so it cannot go stale.
- grpc.reflection.v1alpha (grpcurl and friends list and call the services).
- RaftClient.TransferLeadership, the membership methods (AddMember,
  RemoveMember, ListMembers: impl/_member_service.py) and ProposeBatch
  (impl/_batch_service.py), registered beside the other RaftClient
  methods (gRPC tries generic handlers in order, so a second handler for the
  same service only adds methods).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import grpc
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from impl._batch_service import batch_handlers
from impl._grpc_errors import abort_for
from impl._member_service import member_handlers
from impl._node_errors import NodeStoppedError, NotLeaderError
from impl.generated import client_pb2

if TYPE_CHECKING:
    from impl._node import Node

__all__ = ["HEALTH_SERVICE", "SERVICES", "add_ops_services"]

HEALTH_SERVICE = "grpc.health.v1.Health"
SERVICES = ("raftwright.v1.RaftPeer", "raftwright.v1.RaftClient", "raftwright.v1.KeyValue")
_WATCH_POLL_S = 0.2


class _NodeHealth(health_pb2_grpc.HealthServicer):  # type: ignore[misc]
    """_NodeHealth answers from the node's live state."""

    def __init__(self, node: Node) -> None:
        self._node = node
        self._known = {"", *SERVICES[:2]} | ({SERVICES[2]} if node.serves_kv else set())

    def _status(self, service: str) -> int | None:
        if service not in self._known:
            return None
        serving = self._node.running and self._node.failure is None
        return int(
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )

    async def Check(self, request: Any, context: aio.ServicerContext[Any, Any]) -> Any:  # noqa: N802
        status = self._status(request.service)
        if status is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"unknown service {request.service!r}")
        return health_pb2.HealthCheckResponse(status=status)

    async def Watch(  # noqa: N802
        self, request: Any, context: aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[Any]:
        last: int | None = -1
        while True:
            status = self._status(request.service)
            shown = status if status is not None else health_pb2.HealthCheckResponse.SERVICE_UNKNOWN
            if shown != last:
                last = shown
                yield health_pb2.HealthCheckResponse(status=shown)
            await asyncio.sleep(_WATCH_POLL_S)


class _Transfer:
    def __init__(self, node: Node) -> None:
        self._node = node

    async def __call__(
        self, pb: Any, context: aio.ServicerContext[Any, Any]
    ) -> client_pb2.TransferLeadershipResponse:
        if not isinstance(pb, client_pb2.TransferLeadershipRequest):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "malformed request")
        node = self._node
        try:
            node.transfer_leadership(pb.to)
        except (NotLeaderError, NodeStoppedError) as exc:
            await abort_for(exc, context)
        except ValueError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        return client_pb2.TransferLeadershipResponse(leader=node.config.node_id, term=node.term)


def _parse_transfer(data: bytes) -> Any:
    try:
        return client_pb2.TransferLeadershipRequest.FromString(data)
    except Exception:  # a DecodeError: answered INVALID_ARGUMENT by the handler
        return None


def add_ops_services(server: aio.Server, node: Node) -> None:
    """add_ops_services: health, reflection, TransferLeadership, membership, ProposeBatch."""
    health_pb2_grpc.add_HealthServicer_to_server(_NodeHealth(node), server)
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                "raftwright.v1.RaftClient",
                {
                    "TransferLeadership": grpc.unary_unary_rpc_method_handler(
                        _Transfer(node),
                        request_deserializer=_parse_transfer,
                        response_serializer=lambda m: m.SerializeToString(),
                    ),
                    **member_handlers(node),
                    **batch_handlers(node),
                },
            ),
        )
    )
    reflection.enable_server_reflection(
        (*SERVICES, HEALTH_SERVICE, reflection.SERVICE_NAME), server
    )
