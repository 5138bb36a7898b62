"""RaftClient.ProposeBatch: several commands in one gRPC call, one append, results in order.

Why: a Propose is one unary call plus one replication round per command, and on
a small machine the unary call alone costs the leader about as much CPU as the
whole ceiling allows (BENCHMARKS.md, the gRPC section). A client that has many
commands to send can carry them in one call; the leader then pays one call and
one replication round for all of them (``Node.propose_many``).

Status codes are those of Propose (impl/_grpc_errors.py): not the leader is
FAILED_PRECONDITION with the leader metadata and nothing appended; leadership
lost after the append is ABORTED (outcome unknown); a stopped node is
UNAVAILABLE; a leader in a leadership transfer refuses with UNAVAILABLE too, and
marks that answer with the trailing metadata ``raftwright-not-appended: 1`` so the
client, which otherwise never re-sends a batch after UNAVAILABLE, may move on.
A batch over the caps below is INVALID_ARGUMENT before anything reaches the
node, so nothing of it is appended.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import grpc
from grpc import aio

from impl._client import NOT_APPENDED_KEY
from impl._grpc_errors import abort_for
from impl._node_errors import (
    NodeStoppedError,
    NotLeaderError,
    ProposalLostError,
    TransferInProgressError,
)
from impl.generated import client_pb2

if TYPE_CHECKING:
    from impl._node import Node

__all__ = ["MAX_BATCH_BYTES", "MAX_BATCH_COMMANDS", "batch_handlers", "check_batch"]

# Caps on one ProposeBatch. The count bounds the futures and the dict entries one
# call adds at once; the bytes bound one append (every follower receives the batch in
# one PeerBatch, well under the 64 MiB gRPC message limit of impl/_transport.py).
MAX_BATCH_COMMANDS = 4096
MAX_BATCH_BYTES = 8 << 20


def check_batch(commands: Any) -> str | None:
    """check_batch returns why a batch is refused (over a cap), or None when it is fine."""
    count = len(commands)
    if count > MAX_BATCH_COMMANDS:
        return f"batch of {count} commands is over the cap of {MAX_BATCH_COMMANDS}"
    size = sum(len(c) for c in commands)
    if size > MAX_BATCH_BYTES:
        return f"batch of {size} bytes of commands is over the cap of {MAX_BATCH_BYTES}"
    return None


def _parse(data: bytes) -> Any:
    try:
        return client_pb2.ProposeBatchRequest.FromString(data)
    except Exception:  # a DecodeError: answered INVALID_ARGUMENT by the handler
        return None


class _ProposeBatch:
    def __init__(self, node: Node) -> None:
        self._node = node

    async def __call__(
        self, pb: Any, context: aio.ServicerContext[Any, Any]
    ) -> client_pb2.ProposeBatchResponse:
        if not isinstance(pb, client_pb2.ProposeBatchRequest):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "malformed request")
        refused = check_batch(pb.commands)
        if refused is not None:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, refused)
        try:
            results = await self._node.propose_many(list(pb.commands))
        except TransferInProgressError as exc:
            # UNAVAILABLE as for Propose, marked so the client knows it may move on.
            context.set_trailing_metadata(((NOT_APPENDED_KEY, "1"),))
            await abort_for(exc, context)
            raise
        except (NotLeaderError, ProposalLostError, NodeStoppedError) as exc:
            await abort_for(exc, context)
            raise
        return client_pb2.ProposeBatchResponse(results=results)


def batch_handlers(node: Node) -> dict[str, grpc.RpcMethodHandler[Any, Any]]:
    """batch_handlers is the RaftClient.ProposeBatch method for one node."""
    return {
        "ProposeBatch": grpc.unary_unary_rpc_method_handler(
            _ProposeBatch(node),
            request_deserializer=_parse,
            response_serializer=lambda m: m.SerializeToString(),
        )
    }
