"""The committed generated code in impl/generated/ matches the .proto sources.

Regenerates every module into a temporary folder with protos/generate.py and
compares byte for byte, so a .proto edit without `make protos` fails here.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
GENERATED = ROOT / "impl" / "generated"


@pytest.mark.timeout(60)
def test_generated_code_is_fresh(tmp_path: Path) -> None:
    out = tmp_path / "generated"
    subprocess.run(
        [sys.executable, str(ROOT / "protos" / "generate.py"), str(out)],
        check=True,
        capture_output=True,
    )
    fresh = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    committed = {
        p.name: p.read_bytes()
        for p in GENERATED.iterdir()
        if p.is_file() and p.suffix in (".py", ".pyi")
    }
    assert sorted(fresh) == sorted(committed), "generated file set differs; run `make protos`"
    stale = [name for name in sorted(fresh) if fresh[name] != committed[name]]
    assert not stale, f"stale generated files (run `make protos`): {stale}"


def test_generated_modules_import_as_package() -> None:
    from impl.generated import client_pb2_grpc, kv_pb2_grpc, raft_pb2, raft_pb2_grpc

    assert raft_pb2.DESCRIPTOR.package == "raftwright.v1"
    assert hasattr(raft_pb2_grpc, "RaftPeerStub")
    assert hasattr(client_pb2_grpc, "RaftClientStub")
    assert hasattr(kv_pb2_grpc, "KeyValueStub")
