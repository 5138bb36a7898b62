"""run_in_fresh_interpreter: run a check that forks in a process with no other threads.

The explorer's workers are forked (they share the visited set copy-on-write). A process
forked while another thread holds a lock inherits the lock held forever; inside a pytest
run, earlier tests leave gRPC's core threads behind ("Other threads are currently calling
into gRPC, skipping fork() handlers"), and a forked worker then hung the whole suite. The
checks that fork therefore run in a new interpreter that has imported nothing but them.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[2]


def run_in_fresh_interpreter(check: Callable[[], None], *, timeout_s: float = 240.0) -> None:
    """run_in_fresh_interpreter calls the module-level ``check`` in a child Python.

    The child's assertion error and traceback become this test's failure message.
    """
    module, name = check.__module__, check.__qualname__
    assert "." not in name and "<" not in name, f"{name} must be a module-level function"
    child = subprocess.run(
        [sys.executable, "-c", f"import {module} as m; m.{name}()"],
        cwd=_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    assert child.returncode == 0, f"{module}.{name} failed in a fresh interpreter:\n" + (
        child.stdout + child.stderr
    )
