"""Worker processes spoken to over a pipe: one JSON object a line each way.

Every benchmark process is started through ``Worker`` so that it is bounded in time (each
request has a deadline) and is killed by its own pid at the end, even when a run fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from properties.chaos import free_ports

__all__ = ["ROOT", "Worker", "WorkerError", "free_ports", "kill_all"]

ROOT = Path(__file__).resolve().parent.parent

_LIVE: list[Worker] = []


class WorkerError(RuntimeError):
    """WorkerError: a worker died, timed out or answered with an error."""


def _pump(stream: IO[str], out: queue.Queue[str | None]) -> None:
    for line in stream:
        out.put(line)
    out.put(None)


class Worker:
    """Worker is one child ``python -m MODULE ARGS`` answering JSON requests on stdout."""

    def __init__(self, module: str, args: Sequence[str], *, name: str) -> None:
        self.name = name
        self.module = module
        self.args = list(args)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module, *self.args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=env,
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._stderr: list[str] = []
        assert self.proc.stdout is not None and self.proc.stderr is not None
        threading.Thread(target=_pump, args=(self.proc.stdout, self._lines), daemon=True).start()
        threading.Thread(target=self._drain_stderr, daemon=True).start()
        _LIVE.append(self)

    def _drain_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._stderr.append(line)
            del self._stderr[:-50]

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stderr_tail(self) -> str:
        return "".join(self._stderr[-15:])

    def send(self, request: dict[str, Any]) -> None:
        """send a request without waiting for its answer."""
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            raise WorkerError(f"{self.name}: pipe closed: {self.stderr_tail()}") from exc

    def receive(self, timeout_s: float) -> dict[str, Any]:
        """receive the next answer, or raise WorkerError after timeout_s."""
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise WorkerError(f"{self.name}: no answer in {timeout_s:.0f}s")
            try:
                line = self._lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                raise WorkerError(f"{self.name} exited: {self.stderr_tail()}")
            line = line.strip()
            if not line.startswith("{"):
                continue  # stray output of a library; not ours
            answer: dict[str, Any] = json.loads(line)
            if "error" in answer:
                raise WorkerError(f"{self.name}: {answer['error']}")
            return answer

    def call(self, request: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        self.send(request)
        return self.receive(timeout_s)

    def sigkill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(5)
        if self in _LIVE:
            _LIVE.remove(self)

    def close(self, timeout_s: float = 10.0) -> None:
        """close asks the worker to quit, then kills it if it does not."""
        if self.proc.poll() is None:
            with contextlib.suppress(WorkerError):
                self.send({"op": "quit"})
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.sigkill()
        if self in _LIVE:
            _LIVE.remove(self)


def kill_all() -> None:
    """kill_all kills every worker still alive (by its pid); the last line of defence."""
    for worker in list(_LIVE):
        worker.sigkill()


def serve(handler: Any) -> None:
    """serve is the worker side for synchronous workers: read requests, write answers."""
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        if request.get("op") == "quit":
            return
        try:
            answer = handler(request)
        except Exception as exc:
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()
