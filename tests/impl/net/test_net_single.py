"""A single-node cluster elects itself, serves writes and reads, and survives a restart."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from impl import KVStateMachine, Node, NodeConfig, NodeStoppedError
from impl._kv import decode_get_result, encode_get, encode_put

from ._netutil import free_ports, wait_for

pytestmark = [pytest.mark.network, pytest.mark.timeout(60)]


def config(tmp_path: Path, port: int) -> NodeConfig:
    return NodeConfig(
        node_id="solo",
        cluster_id="single",
        listen=f"127.0.0.1:{port}",
        peers={"solo": f"127.0.0.1:{port}"},
        data_dir=tmp_path / "solo",
        election_timeout_ms=(50, 100),
        heartbeat_ms=20,
        snapshot_every=4,
    )


def test_single_node_cluster(tmp_path: Path) -> None:
    """Reference: section 5.2; quorum of one voter is the node itself."""
    (port,) = free_ports(1)

    async def main() -> None:
        machine = KVStateMachine()
        node = Node(config(tmp_path, port), machine)
        await node.start()
        try:
            await wait_for(lambda: node.role.value == "leader" or None, 10, "self-election")
            for i in range(10):
                await node.propose(encode_put(f"k{i}", b"%d" % i, "", 0))
            assert decode_get_result(await node.read(encode_get("k3"))) == b"3"
            assert node.status().snapshot_index >= 4
            term = node.term
        finally:
            await node.stop()
        with pytest.raises(NodeStoppedError):
            await node.propose(b"late")

        restarted_machine = KVStateMachine()
        again = Node(config(tmp_path, port), restarted_machine)
        await again.start()
        try:
            await wait_for(lambda: again.role.value == "leader" or None, 10, "re-election")
            assert again.term > term
            assert decode_get_result(await again.read(encode_get("k9"))) == b"9"
            assert all(restarted_machine.get(f"k{i}") == b"%d" % i for i in range(10))
        finally:
            await again.stop()

    asyncio.run(main())


def test_start_on_a_busy_port_fails_and_releases_the_store(tmp_path: Path) -> None:
    async def main() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
            busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 0)
            busy.bind(("127.0.0.1", 0))
            busy.listen(1)
            port = busy.getsockname()[1]
            node = Node(config(tmp_path, port), KVStateMachine())
            with pytest.raises((OSError, RuntimeError)):
                await node.start()
            assert not node.running
        # The store was closed: a node on a free port opens the same data dir.
        (free,) = free_ports(1)
        cfg = config(tmp_path, free)
        node = Node(cfg, KVStateMachine())
        await node.start()
        await node.stop()

    asyncio.run(main())
