"""A KV client process for the rehearsal, run inside the client's network namespace.

The test process stays in the host's namespace, so everything that talks to
the cluster runs here, as ``python -m tests.deploy._driver``: it writes or
reads a batch of keys with one KVClient and prints one JSON object on stdout.
A write counts as acknowledged only when ``put`` returned; a write that raised
(no leader before the deadline) is listed as failed, so the test can demand
that every acknowledged write survives and that none was acknowledged by a
node cut off from the majority.

    put --cluster A,B --prefix p --count 10 [--until FILE] [--deadline S] [--tls-ca PEM ...]
        -> {"acked": {"p0": "v-p0", ...}, "failed": {"p3": "reason", ...},
            "acked_at": {"p0": 1234.5, ...}}
        (--until: go on writing after count until FILE exists, so a test can
        keep writes flowing through a change it makes; acked_at is each
        acknowledgement's time.monotonic(), one clock for every process of the
        host, which lets the test count the writes acknowledged during it)
    get --cluster A,B KEY...
        -> {"values": {"p0": "v-p0", "p9": null}}
    peer-vote --cluster A,B --sender n2 [--cluster-id C] [--tls-ca PEM ...]
        -> {"codes": {"A": "PERMISSION_DENIED", ...}}
        (a prevote, which changes no node's state, sent as a peer would: a
        client certificate names no node, so mutual TLS with verify_peer_id
        refuses it)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import grpc
from grpc import aio

from impl import ClientError, KVClient
from impl._security import TlsConfig, channel_credentials, load_tls
from impl.generated import raft_pb2

__all__ = ["main", "value_for"]


def value_for(key: str) -> str:
    """value_for is the value the driver writes under key (the test checks it back)."""
    return f"v-{key}"


def _client(addresses: list[str], deadline_s: float, tls: TlsConfig | None) -> KVClient:
    if tls is None:
        return KVClient(addresses, deadline_s=deadline_s, rpc_timeout_s=1.0)
    return KVClient(addresses, tls=tls, deadline_s=deadline_s, rpc_timeout_s=1.0)


_MAX_WRITES = 100_000  # an --until file that never appears still ends the writer


async def _put(
    addresses: list[str],
    prefix: str,
    count: int,
    *,
    until: Path | None,
    deadline_s: float,
    tls: TlsConfig | None,
) -> object:
    acked: dict[str, str] = {}
    acked_at: dict[str, float] = {}
    failed: dict[str, str] = {}
    async with _client(addresses, deadline_s, tls) as client:
        i = 0
        while i < count or (until is not None and not until.exists() and i < _MAX_WRITES):
            key = f"{prefix}{i}"
            i += 1
            try:
                await client.put(key, value_for(key).encode())
            except ClientError as exc:
                failed[key] = str(exc)
            else:
                acked[key] = value_for(key)
                acked_at[key] = time.monotonic()
    return {"acked": acked, "failed": failed, "acked_at": acked_at}


async def _get(
    addresses: list[str], keys: Sequence[str], deadline_s: float, tls: TlsConfig | None
) -> object:
    values: dict[str, str | None] = {}
    async with _client(addresses, deadline_s, tls) as client:
        for key in keys:
            value = await client.get(key)
            values[key] = None if value is None else value.decode()
    return {"values": values}


async def _peer_vote(
    addresses: list[str], sender: str, cluster_id: str, tls: TlsConfig | None
) -> object:
    codes: dict[str, str] = {}
    request = raft_pb2.VoteRequest(cluster_id=cluster_id, sender=sender, term=1, prevote=True)
    for address in addresses:
        channel = (
            aio.insecure_channel(address)
            if tls is None
            else aio.secure_channel(address, channel_credentials(load_tls(tls)))
        )
        async with channel:
            call = channel.unary_unary(
                "/raftwright.v1.RaftPeer/RequestVote",
                request_serializer=raft_pb2.VoteRequest.SerializeToString,
                response_deserializer=raft_pb2.VoteResponse.FromString,
            )
            try:
                await call(request, timeout=5)
                codes[address] = grpc.StatusCode.OK.name
            except aio.AioRpcError as err:
                codes[address] = err.code().name
    return {"codes": codes}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tests.deploy._driver")
    parser.add_argument("op", choices=("put", "get", "peer-vote"))
    parser.add_argument("keys", nargs="*")
    parser.add_argument("--cluster", required=True)
    parser.add_argument("--prefix", default="k")
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("--until", type=Path, default=None)
    parser.add_argument("--deadline", type=float, default=20.0)
    parser.add_argument("--tls-ca", type=Path, default=None)
    parser.add_argument("--tls-cert", type=Path, default=None)
    parser.add_argument("--tls-key", type=Path, default=None)
    parser.add_argument("--sender", default="n1")
    parser.add_argument("--cluster-id", default="raftwright")
    args = parser.parse_args(argv)
    addresses = [a for a in args.cluster.split(",") if a]
    tls = None
    if args.tls_ca is not None:
        tls = TlsConfig(cert=args.tls_cert, key=args.tls_key, ca=args.tls_ca)
    if args.op == "put":
        until, deadline = args.until, args.deadline
        put = _put(addresses, args.prefix, args.count, until=until, deadline_s=deadline, tls=tls)
        out = asyncio.run(put)
    elif args.op == "peer-vote":
        out = asyncio.run(_peer_vote(addresses, args.sender, args.cluster_id, tls))
    else:
        out = asyncio.run(_get(addresses, args.keys, args.deadline, tls))
    print(json.dumps(out, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
