"""The Node.js client (clients/node/kv.js) against a real 3-node loopback cluster.

The wire API is proven usable outside Python: the Node.js script loads the
committed protos/kv.proto with @grpc/proto-loader, and what it writes the
Python CLI reads and vice versa. It is handed a follower's address only, so it
must follow the not-leader redirect (FAILED_PRECONDITION with
``raftwright-leader-addr`` in the trailing metadata) to get anywhere.

``npm ci`` runs in a temporary copy of clients/node (package-lock.json pins
every package), so the working tree is left as it was. Skipped, with the
reason, when node or npm is not on PATH or the npm registry cannot be reached.

Reference: Raft paper section 8 (clients find the leader through redirects;
writes carry a serial number so a retried command is applied once).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ._openssl import OpensslUnavailable, make_ca, make_leaf
from ._procs import (
    ROOT,
    NodeProcess,
    cli_command,
    cluster_status,
    free_ports,
    start_node,
    stop_nodes,
)

pytestmark = [pytest.mark.network, pytest.mark.slow, pytest.mark.timeout(300)]

NODE_DIR = ROOT / "clients" / "node"
CLUSTER_ID = "node-client-test"
_NETWORK_ERRORS = ("ENOTFOUND", "EAI_AGAIN", "ETIMEDOUT", "ECONNREFUSED", "ECONNRESET")


@pytest.fixture(scope="module")
def node_client(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """node_client is a temporary copy of clients/node with its locked packages installed."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node and npm are needed for the Node.js client test (not on PATH)")
    work = tmp_path_factory.mktemp("node-client")
    for name in ("package.json", "package-lock.json", "kv.js"):
        shutil.copy2(NODE_DIR / name, work / name)
    result = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
        cwd=work,
        check=False,
        capture_output=True,
        text=True,
        timeout=240,
    )
    if result.returncode != 0:
        output = result.stdout + result.stderr
        if any(code in output for code in _NETWORK_ERRORS):
            pytest.skip(f"npm ci could not reach the registry: {output[-500:]}")
        raise AssertionError(f"npm ci failed:\n{output}")
    return work


def run_cluster(root: Path, extra: list[str]) -> Iterator[dict[str, str]]:
    """run_cluster runs three ``raftwright node`` processes on loopback; yields id -> address."""
    ports = free_ports(3)
    peers = {f"n{i + 1}": f"127.0.0.1:{port}" for i, port in enumerate(ports)}
    peer_arg = ",".join(f"{i}={a}" for i, a in peers.items())
    nodes: list[NodeProcess] = []
    try:
        for node_id, address in peers.items():
            args = ["--id", node_id, "--listen", address, "--peers", peer_arg]
            args += ["--data-dir", str(root / node_id), "--cluster-id", CLUSTER_ID, *extra]
            nodes.append(start_node(node_id, args, root / f"{node_id}.log"))
        yield peers
    finally:
        codes = stop_nodes(nodes)
        assert all(code == 0 for code in codes.values()), codes


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[dict[str, str]]:
    """cluster is a plain (no TLS) 3-node loopback cluster."""
    yield from run_cluster(tmp_path, [])


@pytest.fixture
def certs(tmp_path: Path) -> Path:
    """certs is a CA, one node certificate for 127.0.0.1 and a client certificate.

    The node certificate is shared by the three nodes, so it names all three
    (a subjectAltName URI raftwright://<cluster-id>/<node-id> each): under
    mutual TLS a node speaks only for the node ids its certificate names.
    """
    directory = tmp_path / "certs"
    try:
        make_ca(directory)
    except OpensslUnavailable as exc:
        pytest.skip(f"certificates cannot be made: {exc}")
    identities = [f"URI:raftwright://{CLUSTER_ID}/n{i}" for i in (1, 2, 3)]
    make_leaf(directory, "node", ["IP:127.0.0.1", *identities])
    make_leaf(directory, "client", [], server=False)
    return directory


@pytest.fixture
def tls_cluster(tmp_path: Path, certs: Path) -> Iterator[dict[str, str]]:
    """tls_cluster is a 3-node loopback cluster with mutual TLS (one shared node cert)."""
    tls = ["--tls-cert", str(certs / "node.crt"), "--tls-key", str(certs / "node.key")]
    yield from run_cluster(tmp_path, [*tls, "--tls-ca", str(certs / "ca.crt")])


def run_node(work: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["node", str(work / "kv.js"), "--protos", str(ROOT / "protos"), *args],
        cwd=work,
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )


def run_python(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cli_command(*args), cwd=ROOT, check=False, capture_output=True, text=True, timeout=60
    )


def wait_leader(peers: dict[str, str], timeout_s: float = 30.0) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        nodes = cluster_status(list(peers.values()))
        leaders = {n["leader"] for n in nodes}
        if len(leaders) == 1 and None not in leaders and all(n["term"] for n in nodes):
            (leader,) = leaders
            return str(leader)
        time.sleep(0.2)
    raise AssertionError("no leader that all three nodes follow")


def test_node_writes_python_reads_and_back(node_client: Path, cluster: dict[str, str]) -> None:
    leader = wait_leader(cluster)
    follower = next(address for node_id, address in cluster.items() if node_id != leader)
    everyone = ",".join(cluster.values())

    # Node.js writes through a follower (redirect), Python reads.
    put = run_node(node_client, "--cluster", follower, "put", "from-node", "héllo node")
    assert put.returncode == 0, put.stderr
    got = run_python("kv", "--cluster", everyone, "get", "from-node")
    assert (got.returncode, got.stdout) == (0, "héllo node\n"), got.stderr

    # Python writes, Node.js reads through a follower.
    put = run_python("kv", "--cluster", everyone, "put", "from-python", "hello python")
    assert put.returncode == 0, put.stderr
    got = run_node(node_client, "--cluster", follower, "get", "from-python")
    assert (got.returncode, got.stdout) == (0, "hello python\n"), got.stderr

    # Node.js deletes; both clients then see the key missing (exit 1, message on stderr).
    deleted = run_node(node_client, "--cluster", everyone, "delete", "from-python")
    assert deleted.returncode == 0, deleted.stderr
    gone = run_python("kv", "--cluster", everyone, "get", "from-python")
    assert gone.returncode == 1 and gone.stdout == "", gone
    missing = run_node(node_client, "--cluster", everyone, "get", "from-python")
    assert missing.returncode == 1 and missing.stdout == ""
    assert "key not found" in missing.stderr


def test_node_client_reports_no_leader_and_usage(node_client: Path) -> None:
    (port,) = free_ports(1)
    down = run_node(node_client, "--cluster", f"127.0.0.1:{port}", "--timeout", "1", "get", "k")
    assert down.returncode == 2, down
    assert "no leader reachable" in down.stderr
    bad = run_node(node_client, "--cluster", "127.0.0.1:1", "put", "only-a-key")
    assert bad.returncode == 3 and "usage:" in bad.stderr
    helped = run_node(node_client, "--help")
    assert helped.returncode == 0 and "put KEY VALUE" in helped.stdout


def test_node_client_with_mutual_tls(
    node_client: Path, tls_cluster: dict[str, str], certs: Path
) -> None:
    everyone = ",".join(tls_cluster.values())
    ca = ["--tls-ca", str(certs / "ca.crt")]
    mutual = [*ca, "--tls-cert", str(certs / "client.crt"), "--tls-key", str(certs / "client.key")]
    put = run_node(node_client, "--cluster", everyone, *mutual, "put", "secure", "sealed")
    assert put.returncode == 0, put.stderr
    got = run_python("kv", "--cluster", everyone, *mutual, "get", "secure")
    assert (got.returncode, got.stdout) == (0, "sealed\n"), got.stderr
    got = run_node(node_client, "--cluster", everyone, *mutual, "get", "secure")
    assert (got.returncode, got.stdout) == (0, "sealed\n"), got.stderr
    # Without a client certificate the nodes refuse the handshake: no leader is ever reached.
    for tls in (ca, []):
        refused = run_node(
            node_client, "--cluster", everyone, *tls, "--timeout", "2", "get", "secure"
        )
        assert refused.returncode == 2 and refused.stdout == "", refused
