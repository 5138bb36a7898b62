"""The container entrypoint end to end: three pods' worth of it on loopback.

Each process is started as the image starts it, ``raftwright-entrypoint``
with a StatefulSet pod name, and must turn itself (exec) into
``raftwright node --config`` on the TOML it wrote. The one-host layout knobs
(RAFTWRIGHT_PEER_HOST=127.0.0.1, a port stride of 1) stand in for the per-pod
DNS names and addresses Kubernetes would give. The three must form one
cluster (a leader the others follow), serve a write and a read, expose
/metrics, log only JSON lines, and stop with exit 0 on SIGTERM, the signal
Kubernetes sends.

Reference: Raft paper section 5.2 (leader election among the configured
voters).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from ._procs import ROOT, NodeProcess, cli_command, cluster_status, consecutive_free_ports
from ._procs import stop_nodes as stop_processes

pytestmark = [pytest.mark.network, pytest.mark.timeout(120)]

ENTRYPOINT = ROOT / "deploy" / "entrypoint.py"
REPLICAS = 3


def start_pod(ordinal: int, base: int, metrics_base: int, root: Path) -> NodeProcess:
    bin_dir = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
        "RAFTWRIGHT_POD_NAME": f"raftwright-{ordinal}",
        "RAFTWRIGHT_REPLICAS": str(REPLICAS),
        "RAFTWRIGHT_PEER_HOST": "127.0.0.1",
        "RAFTWRIGHT_LISTEN_HOST": "127.0.0.1",
        "RAFTWRIGHT_PORT": str(base),
        "RAFTWRIGHT_PORT_STRIDE": "1",
        "RAFTWRIGHT_METRICS_PORT": str(metrics_base + ordinal),
        "RAFTWRIGHT_DATA_DIR": str(root / f"data-{ordinal}"),
        "RAFTWRIGHT_CONFIG_OUT": str(root / f"pod-{ordinal}.toml"),
        "RAFTWRIGHT_CLUSTER_ID": "entrypoint-test",
    }
    log_path = root / f"pod-{ordinal}.log"
    log_file = log_path.open("w")
    process = subprocess.Popen(
        [sys.executable, str(ENTRYPOINT)],
        cwd=root,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    return NodeProcess(f"raftwright-{ordinal}", process, log_path, log_file)


def test_three_entrypoints_form_a_cluster(tmp_path: Path) -> None:
    base = consecutive_free_ports(REPLICAS)
    metrics_base = consecutive_free_ports(REPLICAS)
    addresses = [f"127.0.0.1:{base + i}" for i in range(REPLICAS)]
    pods = [start_pod(i, base, metrics_base, tmp_path) for i in range(REPLICAS)]
    try:
        deadline = time.monotonic() + 60
        leaders: set[str | None] = set()
        while time.monotonic() < deadline:
            nodes = cluster_status(addresses)
            leaders = {n["leader"] for n in nodes}
            if len(leaders) == 1 and None not in leaders:
                break
            assert all(p.process.poll() is None for p in pods), [p.output() for p in pods]
            time.sleep(0.2)
        assert len(leaders) == 1 and None not in leaders, f"no leader all follow: {leaders}"
        (leader,) = leaders
        assert leader in {f"raftwright-{i}" for i in range(REPLICAS)}
        assert {n["id"] for n in nodes} == {f"raftwright-{i}" for i in range(REPLICAS)}

        cluster = ",".join(addresses)
        put = subprocess.run(
            cli_command("kv", "--cluster", cluster, "put", "pod-key", "pod-value"),
            cwd=ROOT, check=False, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert put.returncode == 0, put.stderr
        get = subprocess.run(
            cli_command("kv", "--cluster", addresses[-1], "get", "pod-key"),
            cwd=ROOT, check=False, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert (get.returncode, get.stdout) == (0, "pod-value\n"), get.stderr

        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_base}/metrics", timeout=10) as r:
            metrics = r.read().decode()
        assert "raftwright_term" in metrics and "raftwright_commit_index" in metrics
    finally:
        codes = stop_processes(pods)
    assert codes == {p.node_id: 0 for p in pods}, [p.output() for p in pods]
    # The entrypoint wrote each pod's config where it was told to.
    assert 'id = "raftwright-1"' in (tmp_path / "pod-1.toml").read_text()
    # The image logs JSON lines (log shippers read the pod's stream line by line): the
    # entrypoint's own line and every line of the node after the exec parse.
    for pod in pods:
        lines = [ln for ln in pod.output().splitlines() if ln.strip()]
        records = [json.loads(ln) for ln in lines]
        assert records[0]["logger"] == "raftwright.entrypoint"
        assert all(isinstance(r, dict) and "msg" in r for r in records), lines
