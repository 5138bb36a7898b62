"""The deployment files: container entrypoint, Kubernetes manifests, Dockerfile, systemd unit.

No container engine or Kubernetes cluster runs here, so the image is never
built in these tests. What is checked instead: the entrypoint, run as the
script the image runs, derives the node id, listen address, peers and data dir
from a (fake) pod name and writes TOML that ``raftwright node --config`` reads
the same way; the manifests parse and agree with each other and with the
entrypoint (service name, ports, replica count, data mount, security); the
Dockerfile has the shape the docs promise; and systemd accepts the unit.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
ENTRYPOINT = DEPLOY / "entrypoint.py"


def entrypoint(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """entrypoint runs deploy/entrypoint.py as a script with exactly env (plus PATH)."""
    return subprocess.run(
        [sys.executable, str(ENTRYPOINT), *args],
        env={"PATH": os.environ.get("PATH", ""), **env},
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
    )


def derived(env: dict[str, str]) -> dict[str, Any]:
    result = entrypoint(env, "--print")
    assert result.returncode == 0, result.stderr
    return tomllib.loads(result.stdout)


def load_manifests() -> dict[str, dict[str, Any]]:
    """load_manifests parses every deploy/k8s/*.yaml document, keyed by kind."""
    docs: dict[str, dict[str, Any]] = {}
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is not None:
                assert doc["kind"] not in docs, f"two {doc['kind']} documents"
                docs[doc["kind"]] = doc
    return docs


def test_pod_ordinal_is_node_id_and_peers_are_the_set() -> None:
    config = derived({"HOSTNAME": "raftwright-2", "RAFTWRIGHT_REPLICAS": "3"})
    assert config["id"] == "raftwright-2"
    assert config["listen"] == "0.0.0.0:7000"
    assert config["data_dir"] == "/var/lib/raftwright"
    assert config["cluster_id"] == "raftwright"
    assert config["peers"] == {
        f"raftwright-{i}": f"raftwright-{i}.raftwright.default.svc.cluster.local:7000"
        for i in range(3)
    }
    assert "tls" not in config and "metrics_listen" not in config


def test_every_pod_derives_the_same_peer_table() -> None:
    env = {"RAFTWRIGHT_REPLICAS": "5", "RAFTWRIGHT_NAMESPACE": "prod", "RAFTWRIGHT_SERVICE": "rw"}
    tables = [derived({**env, "RAFTWRIGHT_POD_NAME": f"kv-store-{i}"}) for i in range(5)]
    assert {c["id"] for c in tables} == {f"kv-store-{i}" for i in range(5)}
    first = tables[0]["peers"]
    assert all(c["peers"] == first for c in tables)
    assert first["kv-store-4"] == "kv-store-4.rw.prod.svc.cluster.local:7000"


def test_tls_metrics_and_one_host_layout() -> None:
    config = derived(
        {
            "RAFTWRIGHT_POD_NAME": "raftwright-1",
            "RAFTWRIGHT_REPLICAS": "3",
            "RAFTWRIGHT_PEER_HOST": "127.0.0.1",
            "RAFTWRIGHT_LISTEN_HOST": "127.0.0.1",
            "RAFTWRIGHT_PORT": "17000",
            "RAFTWRIGHT_PORT_STRIDE": "1",
            "RAFTWRIGHT_METRICS_PORT": "9100",
            "RAFTWRIGHT_TLS_DIR": "/etc/raftwright/tls/",
        }
    )
    assert config["listen"] == "127.0.0.1:17001"
    assert config["peers"] == {f"raftwright-{i}": f"127.0.0.1:{17000 + i}" for i in range(3)}
    assert config["metrics_listen"] == "127.0.0.1:9100"
    assert config["tls"] == {
        "cert": "/etc/raftwright/tls/tls.crt",
        "key": "/etc/raftwright/tls/tls.key",
        "ca": "/etc/raftwright/tls/ca.crt",
    }


def pod0(**env: str) -> dict[str, str]:
    """pod0 is pod raftwright-0 of a 3-voter set, with env on top."""
    return {"HOSTNAME": "raftwright-0", "RAFTWRIGHT_REPLICAS": "3", **env}


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"HOSTNAME": "raftwright", "RAFTWRIGHT_REPLICAS": "3"}, "not <statefulset>-<ordinal>"),
        ({"HOSTNAME": "raftwright-01", "RAFTWRIGHT_REPLICAS": "3"}, "not <statefulset>"),
        ({"HOSTNAME": "raftwright-3", "RAFTWRIGHT_REPLICAS": "3"}, "ordinal 3"),
        ({"HOSTNAME": "raftwright-0"}, "RAFTWRIGHT_REPLICAS is required"),
        ({"HOSTNAME": "raftwright-0", "RAFTWRIGHT_REPLICAS": "three"}, "whole number"),
        ({"HOSTNAME": "raftwright-0", "RAFTWRIGHT_REPLICAS": "0"}, "at least 1"),
        (pod0(RAFTWRIGHT_PORT="65535", RAFTWRIGHT_PORT_STRIDE="1"), "past 65535"),
        (pod0(RAFTWRIGHT_PEER_HOST="{x}"), "RAFTWRIGHT_PEER_HOST"),
        (pod0(RAFTWRIGHT_LOG_FORMAT="xml"), "json or text"),
    ],
)
def test_bad_environment_fails_with_the_setting_named(env: dict[str, str], message: str) -> None:
    result = entrypoint(env, "--print")
    assert result.returncode == 3
    assert result.stdout == ""
    assert message in result.stderr, result.stderr


def test_manifests_agree_with_each_other_and_the_entrypoint() -> None:
    docs = load_manifests()
    service, stateful = docs["Service"], docs["StatefulSet"]
    assert service["spec"]["clusterIP"] == "None"  # headless: one DNS name per pod
    assert service["spec"]["publishNotReadyAddresses"] is True
    spec = stateful["spec"]
    assert spec["serviceName"] == service["metadata"]["name"]
    assert spec["podManagementPolicy"] == "Parallel"
    labels = spec["template"]["metadata"]["labels"]
    assert spec["selector"]["matchLabels"].items() <= labels.items()
    assert service["spec"]["selector"].items() <= labels.items()

    (container,) = spec["template"]["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert env["RAFTWRIGHT_POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert env["RAFTWRIGHT_REPLICAS"]["value"] == str(spec["replicas"])
    assert env["RAFTWRIGHT_SERVICE"]["value"] == service["metadata"]["name"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["raft"] == int(env["RAFTWRIGHT_PORT"]["value"])
    assert ports["metrics"] == int(env["RAFTWRIGHT_METRICS_PORT"]["value"])
    for port in service["spec"]["ports"]:
        assert port["targetPort"] in ports and port["port"] == ports[port["targetPort"]]

    # The claim template is mounted at the data dir the entrypoint is given.
    (claim,) = spec["volumeClaimTemplates"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts[claim["metadata"]["name"]] == env["RAFTWRIGHT_DATA_DIR"]["value"]
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    # A read-only root needs a writable /tmp for the generated config file.
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert mounts["tmp"] == "/tmp"
    assert spec["template"]["spec"]["securityContext"]["runAsNonRoot"] is True

    # What the entrypoint derives for pod 0 of this StatefulSet.
    config = derived(
        {
            "RAFTWRIGHT_POD_NAME": f"{stateful['metadata']['name']}-0",
            **{k: e["value"] for k, e in env.items() if "value" in e},
        }
    )
    assert config["data_dir"] == mounts["data"]
    assert len(config["peers"]) == spec["replicas"]
    assert config["metrics_listen"] == f"0.0.0.0:{ports['metrics']}"


def test_dockerfile_shape() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    assert lines[0] == "FROM python:3.11-slim"
    users = [ln.split()[1] for ln in lines if ln.startswith("USER ")]
    assert users and not users[-1].startswith(("0", "root")), users
    assert 'VOLUME ["/var/lib/raftwright"]' in lines
    assert lines[-1] == 'ENTRYPOINT ["raftwright-entrypoint"]'
    assert "COPY deploy/entrypoint.py /usr/local/bin/raftwright-entrypoint" in lines
    # Every COPY source exists (the build context is the repository root).
    for line in lines:
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), source
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".venv" in ignored and ".git" in ignored


def test_systemd_unit_is_accepted(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    unit = (DEPLOY / "systemd" / "raftwright@.service").read_text()
    match = re.search(r"^ExecStart=(\S+) node --config /etc/raftwright/%i\.toml$", unit, re.M)
    assert match is not None, "ExecStart runs `raftwright node --config` on the instance's file"
    # verify needs the ExecStart binary to exist: point it at this checkout's command.
    raftwright = Path(sys.executable).parent / "raftwright"
    (tmp_path / "raftwright@.service").write_text(unit.replace(match[1], str(raftwright)))
    result = subprocess.run(
        [analyze, "verify", str(tmp_path / "raftwright@n1.service")],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0 and result.stderr.strip() == "", result.stderr
