"""Standard gRPC health checking and server reflection, through real stubs.

Health answers from the node's live state: SERVING while the node runs,
NOT_SERVING after it stopped, NOT_FOUND for a service it does not host.
Reflection lists the services and serves their descriptors, so generic
tools (grpcurl) can call the API without the .proto files.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from google.protobuf import descriptor_pb2
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from impl import KVStateMachine, Node, NodeConfig

from ._opsutil import free_ports

pytestmark = [pytest.mark.network, pytest.mark.timeout(60)]


def _single(tmp_path: Path) -> Node:
    address = f"127.0.0.1:{free_ports(1)[0]}"
    config = NodeConfig(
        node_id="solo",
        cluster_id="ops-health",
        listen=address,
        peers={"solo": address},
        data_dir=tmp_path / "solo",
        election_timeout_ms=(100, 200),
        heartbeat_ms=20,
    )
    return Node(config, KVStateMachine())


def test_health_check_serving_unknown_and_after_stop(tmp_path: Path) -> None:
    async def scenario() -> None:
        node = _single(tmp_path)
        await node.start()
        address = node.config.address
        try:
            async with aio.insecure_channel(address) as channel:
                stub = health_pb2_grpc.HealthStub(channel)
                serving = health_pb2.HealthCheckResponse.SERVING
                for service in ("", "raftwright.v1.RaftClient", "raftwright.v1.KeyValue"):
                    reply = await stub.Check(
                        health_pb2.HealthCheckRequest(service=service), timeout=5
                    )
                    assert reply.status == serving, service
                with pytest.raises(aio.AioRpcError) as info:
                    await stub.Check(health_pb2.HealthCheckRequest(service="no.Such"), timeout=5)
                assert info.value.code() is grpc.StatusCode.NOT_FOUND
                watch = stub.Watch(health_pb2.HealthCheckRequest(service=""), timeout=5)
                first = await watch.read()
                assert first.status == serving
                watch.cancel()
        finally:
            await node.stop()
        # Stopped: the server is gone, so a probe fails (what a load balancer needs).
        async with aio.insecure_channel(address) as channel:
            with pytest.raises(aio.AioRpcError) as info:
                await health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(), timeout=1
                )
            assert info.value.code() is grpc.StatusCode.UNAVAILABLE

    asyncio.run(scenario())


def test_reflection_lists_services_and_serves_descriptors(tmp_path: Path) -> None:
    async def scenario() -> None:
        node = _single(tmp_path)
        await node.start()
        try:
            async with aio.insecure_channel(node.config.address) as channel:
                stub = reflection_pb2_grpc.ServerReflectionStub(channel)

                async def ask(
                    *requests: reflection_pb2.ServerReflectionRequest,
                ) -> list[reflection_pb2.ServerReflectionResponse]:
                    async def gen() -> AsyncIterator[reflection_pb2.ServerReflectionRequest]:
                        for r in requests:
                            yield r

                    call = stub.ServerReflectionInfo(gen(), timeout=5)
                    return [resp async for resp in call]

                listed, symbol = await ask(
                    reflection_pb2.ServerReflectionRequest(list_services=""),
                    reflection_pb2.ServerReflectionRequest(
                        file_containing_symbol="raftwright.v1.RaftClient"
                    ),
                )
                names = {s.name for s in listed.list_services_response.service}
                assert {
                    "raftwright.v1.RaftClient",
                    "raftwright.v1.RaftPeer",
                    "raftwright.v1.KeyValue",
                    "grpc.health.v1.Health",
                } <= names
                files = [
                    descriptor_pb2.FileDescriptorProto.FromString(raw)
                    for raw in symbol.file_descriptor_response.file_descriptor_proto
                ]
                client_file = next(f for f in files if f.package == "raftwright.v1")
                service = next(s for s in client_file.service if s.name == "RaftClient")
                assert {m.name for m in service.method} >= {
                    "Propose",
                    "Read",
                    "Status",
                    "TransferLeadership",
                }
        finally:
            await node.stop()

    asyncio.run(scenario())


def test_health_is_not_serving_for_a_node_that_does_not_run(tmp_path: Path) -> None:
    """A node whose driver is not running (never started, or failed) is NOT_SERVING."""
    from impl._health import add_ops_services

    async def scenario() -> None:
        node = _single(tmp_path)  # constructed, never started: not running
        server = aio.server()
        add_ops_services(server, node)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            async with aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                reply = await health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(service=""), timeout=5
                )
                assert reply.status == health_pb2.HealthCheckResponse.NOT_SERVING
        finally:
            await server.stop(None)
            await node.stop()

    asyncio.run(scenario())
