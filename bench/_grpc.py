"""The gRPC client path: ``Propose`` from client processes against the raw grpc.aio rate.

Two kinds of process, both started by the benchmark:

- ``python -m bench._grpc raw-server --port P``: a grpc.aio server with one unary method
  that returns its request (no work at all): the ceiling any gRPC service on this machine
  can reach.
- ``python -m bench._grpc client --target HOST:PORT --mode propose|raw ...``: one client
  process keeping ``--concurrency`` calls in flight for ``--seconds``; ``propose`` uses the
  public ``impl.RaftClient.propose`` (leader discovery, retries), ``batch`` its
  ``propose_many`` with ``--batch`` commands per call (ProposeBatch: the batching on the
  client's side of the call), ``read`` its ``read`` (development only), ``raw`` a bare
  stub call. ``ops`` counts commands (``--batch`` per batch call), ``calls`` counts calls.
  ``stream`` keeps the same number of messages in flight on one bidirectional stream to
  the raw server (what a streaming AppendEntries would cost). It prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
from grpc import aio

from bench._stats import summarise
from impl import RaftClient

__all__ = ["main"]

_METHOD = "/bench.Raw/Echo"
_STREAM_METHOD = "/bench.Raw/EchoStream"


def _identity(data: bytes) -> bytes:
    return data


async def _raw_server(port: int) -> None:
    async def echo(request: bytes, context: aio.ServicerContext[bytes, bytes]) -> bytes:
        return request

    async def echo_stream(
        requests: AsyncIterator[bytes], context: aio.ServicerContext[bytes, bytes]
    ) -> AsyncIterator[bytes]:
        async for request in requests:
            yield request

    handler = grpc.method_handlers_generic_handler(
        "bench.Raw",
        {
            "Echo": grpc.unary_unary_rpc_method_handler(
                echo, request_deserializer=_identity, response_serializer=_identity
            ),
            "EchoStream": grpc.stream_stream_rpc_method_handler(
                echo_stream, request_deserializer=_identity, response_serializer=_identity
            ),
        },
    )
    server = aio.server()
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    print(json.dumps({"ready": True}), flush=True)
    await asyncio.wait_for(server.wait_for_termination(), 3600)


async def _stream_client(args: argparse.Namespace) -> dict[str, Any]:
    """_stream_client keeps ``concurrency`` messages in flight on ONE bidirectional stream."""
    payload = b"x" * args.payload
    channel = aio.insecure_channel(args.target)
    open_stream = channel.stream_stream(
        _STREAM_METHOD, request_serializer=_identity, response_deserializer=_identity
    )
    loop = asyncio.get_running_loop()
    measure_from = loop.time() + args.warmup
    stop_at = measure_from + args.seconds
    sent: collections.deque[float] = collections.deque()
    latencies: list[float] = []
    counted = 0
    try:
        # grpc-stubs lag grpc.aio here: no request iterator means "write() it yourself".
        call = open_stream(timeout=args.seconds + args.warmup + 30)  # type: ignore[call-arg]
        for _ in range(args.concurrency):
            sent.append(time.perf_counter())
            await call.write(payload)
        while sent:
            reply = await call.read()
            if reply is aio.EOF:  # type: ignore[attr-defined]
                break
            t0 = sent.popleft()
            now = loop.time()
            if now >= measure_from and now < stop_at:
                latencies.append((time.perf_counter() - t0) * 1000)
                counted += 1
            if now < stop_at:
                sent.append(time.perf_counter())
                await call.write(payload)
        await call.done_writing()
    finally:
        await channel.close(None)
    return summarise(latencies, counted, args.seconds, 0)


async def _client(args: argparse.Namespace) -> dict[str, Any]:
    payload = b"x" * args.payload
    batch = [payload] * args.batch
    per_call = args.batch if args.mode == "batch" else 1
    latencies: list[float] = []
    counted = [0, 0]
    loop = asyncio.get_running_loop()
    measure_from = loop.time() + args.warmup
    stop_at = measure_from + args.seconds
    raft = RaftClient([args.target], deadline_s=5.0)
    channel = aio.insecure_channel(args.target)
    echo = channel.unary_unary(
        _METHOD, request_serializer=_identity, response_deserializer=_identity
    )

    async def one() -> None:
        while True:
            now = loop.time()
            if now >= stop_at:
                return
            t0 = time.perf_counter()
            try:
                if args.mode == "raw":
                    await echo(payload, timeout=5.0)
                elif args.mode == "read":
                    await raft.read(b"")
                elif args.mode == "batch":
                    await raft.propose_many(batch)
                else:
                    await raft.propose(payload)
            except Exception:
                counted[1] += 1
                await asyncio.sleep(0.01)
                continue
            if now >= measure_from:
                latencies.append((time.perf_counter() - t0) * 1000)
                counted[0] += 1

    cpu: list[float] = []

    async def cpu_window() -> None:
        """cpu_window: this process's CPU seconds at the start and end of the measured window."""
        await asyncio.sleep(max(0.0, measure_from - loop.time()))
        cpu.append(time.process_time())
        await asyncio.sleep(max(0.0, stop_at - loop.time()))
        cpu.append(time.process_time())

    try:
        await asyncio.wait_for(
            asyncio.gather(cpu_window(), *(one() for _ in range(args.concurrency))),
            args.seconds + args.warmup + 30,
        )
    finally:
        await raft.close()
        await channel.close(None)
    # ops: commands (a batch call carries per_call of them); latencies are per call
    result = summarise(latencies, counted[0] * per_call, args.seconds, counted[1])
    result["calls"] = counted[0]
    result["calls_per_s"] = counted[0] / args.seconds if args.seconds > 0 else 0.0
    result["commands_per_call"] = per_call
    # client CPU per call (the client shares the machine's cores with the server)
    result["client_cpu_us_per_call"] = round((cpu[1] - cpu[0]) * 1e6 / max(counted[0], 1), 1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    srv = sub.add_parser("raw-server")
    srv.add_argument("--port", type=int, required=True)
    cli = sub.add_parser("client")
    cli.add_argument("--target", required=True)
    cli.add_argument("--mode", choices=("propose", "batch", "read", "raw", "stream"), required=True)
    cli.add_argument("--batch", type=int, default=32, help="commands per call (--mode batch)")
    cli.add_argument("--concurrency", type=int, default=1)
    cli.add_argument("--seconds", type=float, default=2.0)
    cli.add_argument("--warmup", type=float, default=0.3)
    cli.add_argument("--payload", type=int, default=10)
    args = parser.parse_args()
    if args.command == "raw-server":
        asyncio.run(_raw_server(args.port))
    else:
        run = _stream_client if args.mode == "stream" else _client
        print(json.dumps(asyncio.run(run(args))), flush=True)


if __name__ == "__main__":
    main()
