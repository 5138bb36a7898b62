"""Regenerate the Python modules of the .proto files into impl/generated/.

Run with ``make protos`` (or ``python protos/generate.py [OUT_DIR]``). The
generated code is committed; tests/impl/net/test_protos_fresh.py regenerates it
into a temporary folder and fails if the committed files differ.

protoc writes flat imports (``import raft_pb2``); the generated modules must be
importable as ``impl.generated.raft_pb2``, so a small post-processing step
rewrites those import lines.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from grpc_tools import protoc  # type: ignore[import-untyped]

PROTOS = ("raft.proto", "client.proto", "kv.proto")
PACKAGE = "impl.generated"
HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE.parent / "impl" / "generated"

_FLAT_IMPORT = re.compile(r"^import (\w+_pb2)( as \w+)?$", re.MULTILINE)

INIT_TEXT = '"""Generated protobuf and gRPC modules (see protos/generate.py). Do not edit."""\n'


def _fix_imports(text: str) -> str:
    """Rewrite ``import x_pb2 as y`` into ``from impl.generated import x_pb2 as y``."""

    def repl(match: re.Match[str]) -> str:
        alias = match.group(2) or ""
        return f"from {PACKAGE} import {match.group(1)}{alias}"

    return _FLAT_IMPORT.sub(repl, text)


def generate(out_dir: Path) -> list[Path]:
    """Generate every module into out_dir and return the files written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    bin_dir = Path(sys.executable).parent
    args = [
        "grpc_tools.protoc",
        f"--plugin=protoc-gen-mypy={bin_dir / 'protoc-gen-mypy'}",
        f"--plugin=protoc-gen-mypy_grpc={bin_dir / 'protoc-gen-mypy_grpc'}",
        f"--proto_path={HERE}",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        f"--mypy_out={out_dir}",
        f"--mypy_grpc_out={out_dir}",
        *(str(HERE / name) for name in PROTOS),
    ]
    code = protoc.main(args)
    if code != 0:
        raise SystemExit(f"protoc failed with exit code {code}")
    written: list[Path] = []
    for path in sorted(out_dir.iterdir()):
        if path.suffix not in (".py", ".pyi") or path.name == "__init__.py":
            continue
        text = path.read_text()
        fixed = _fix_imports(text)
        if fixed != text:
            path.write_text(fixed)
        written.append(path)
    init = out_dir / "__init__.py"
    init.write_text(INIT_TEXT)
    written.append(init)
    return written


def main(argv: list[str]) -> int:
    out_dir = Path(argv[1]) if len(argv) > 1 else DEFAULT_OUT
    for path in generate(out_dir):
        print(f"wrote {path.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
