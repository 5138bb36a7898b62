"""The image's install step, run outside a container (no container engine here).

deploy/Dockerfile copies a few paths of the repository and runs
``pip install .`` on them. This test copies exactly the paths its COPY lines
name into an empty folder, installs that folder the same way (into a target
folder, offline, with this environment's build backend and dependencies),
and runs the installed ``raftwright`` and the entrypoint from outside the
checkout. So a file the package needs but the Dockerfile does not copy fails
here. What it cannot show: that the base image, the user set-up and the
volume work; the image itself has not been built.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "deploy" / "Dockerfile"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def copied_sources() -> list[tuple[str, str]]:
    """copied_sources is (source, destination) for each COPY of the Dockerfile, in order."""
    pairs: list[tuple[str, str]] = []
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if line.startswith("COPY "):
            *sources, dest = line.split()[1:]
            pairs += [(source, dest) for source in sources]
    return pairs


def test_the_copied_files_install_and_run(tmp_path: Path) -> None:
    context = tmp_path / "src"
    context.mkdir()
    entrypoint: Path | None = None
    for source, dest in copied_sources():
        origin = ROOT / source
        if dest.startswith("/usr/local/bin/"):
            entrypoint = origin
            continue
        # "COPY a b ./" keeps the names; "COPY spec ./spec" names the target.
        target = context / (origin.name if dest.endswith("/") else Path(dest).name)
        if origin.is_dir():
            shutil.copytree(origin, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(origin, target)
    assert entrypoint is not None and entrypoint.name == "entrypoint.py"

    site = tmp_path / "site"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
         "--no-build-isolation", "--target", str(site), str(context)],
        check=False, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert install.returncode == 0, install.stdout + install.stderr

    # Run from an empty folder with only the installed copy on the path: -S skips the site
    # hooks, so this checkout's editable install is not seen; the dependencies (grpc, ...)
    # come from this environment's site-packages as a plain path entry after the copy.
    deps = next(p for p in sys.path if p.endswith("site-packages"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), deps]), "PYTHONSAFEPATH": "1"}
    python = [sys.executable, "-S"]
    where = subprocess.run(
        [*python, "-c", "import impl, spec, properties as p; print(impl.__file__, spec.__file__,"
         " p.__file__)"],
        cwd=tmp_path, env=env, check=False, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert where.returncode == 0, where.stderr
    for module_file in where.stdout.split():
        assert Path(module_file).is_relative_to(site), where.stdout
    script = site / "bin" / "raftwright"
    assert script.exists(), sorted(p.name for p in (site / "bin").iterdir())
    helped = subprocess.run(
        [*python, str(script), "node", "--help"],
        cwd=tmp_path, env=env, check=False, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert helped.returncode == 0 and "--config FILE.toml" in helped.stdout, helped.stderr
    printed = subprocess.run(
        [*python, str(entrypoint), "--print"],
        cwd=tmp_path,
        env={**env, "RAFTWRIGHT_POD_NAME": "raftwright-0", "RAFTWRIGHT_REPLICAS": "1"},
        check=False, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert printed.returncode == 0 and 'id = "raftwright-0"' in printed.stdout, printed.stderr
