"""Log output of ``raftwright node``: human text or one JSON object per line.

JSON lines are for log shippers (Loki, Elasticsearch, journald forwarding):
each record is one line with the keys ts (UTC, RFC 3339 with microseconds),
level, logger, msg and node (the node id), plus exc when an exception is
attached. Every line parses: native code (gRPC's C core logs TLS handshake
failures itself, straight to file descriptor 2) and stray writes to stderr
are captured by NativeStderr and re-emitted as JSON records too.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import re
import sys
import threading
from typing import Protocol, TextIO

__all__ = ["LOG_FORMATS", "JsonFormatter", "NativeStderr", "configure_logging"]

# absl / gRPC core line: "I1201 21:38:02.144920    1171 file.cc:2563] text"
_ABSL = re.compile(r"^([IWEF])\d{4} [\d:.]+\s+\d+ ([^\]]+)\] ?(.*)$")
_ABSL_LEVELS = {"I": "INFO", "W": "WARNING", "E": "ERROR", "F": "CRITICAL"}

LOG_FORMATS = ("text", "json")


class Stream(Protocol):
    """Stream is what a log handler writes to."""

    def write(self, text: str, /) -> int: ...

    def flush(self) -> None: ...


class JsonFormatter(logging.Formatter):
    """JsonFormatter renders a record as one JSON object (no newlines inside)."""

    def __init__(self, node: str | None) -> None:
        super().__init__()
        self._node = node

    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.datetime.fromtimestamp(record.created, datetime.UTC)
        obj: dict[str, object] = {
            "ts": ts.isoformat(timespec="microseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "node": self._node,
        }
        if record.exc_info:
            obj["exc"] = self.formatException(record.exc_info)
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def configure_logging(
    level: str, log_format: str, node: str | None = None, stream: Stream | None = None
) -> None:
    """configure_logging replaces the root handlers with one handler on stream (stderr)."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {LOG_FORMATS}, got {log_format!r}")
    handler: logging.StreamHandler[Stream] = logging.StreamHandler(
        stream if stream is not None else sys.stderr
    )
    if log_format == "json":
        handler.setFormatter(JsonFormatter(node))
    else:
        prefix = f"[{node}] " if node else ""
        handler.setFormatter(
            logging.Formatter(f"%(asctime)s %(levelname)s %(name)s: {prefix}%(message)s")
        )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper(), logging.WARNING))


class NativeStderr:
    """NativeStderr turns whatever is written to file descriptor 2 into JSON lines.

    start() points fd 2 at a pipe and returns a stream on the real stderr for
    the logging handler; a thread reads the pipe and writes each line as a
    record (logger "grpc" for gRPC core lines, "stderr" otherwise). stop()
    puts fd 2 back and drains the pipe, so nothing written before is lost.
    """

    def __init__(self, node: str | None) -> None:
        self._node = node
        self._saved = -1
        self._thread: threading.Thread | None = None
        self._out: TextIO | None = None
        self._lock = threading.Lock()

    def start(self) -> Stream:
        sys.stderr.flush()
        self._saved = os.dup(2)
        self._out = os.fdopen(os.dup(self._saved), "w", buffering=1, encoding="utf-8")
        read_fd, write_fd = os.pipe()
        os.dup2(write_fd, 2)
        os.close(write_fd)
        self._thread = threading.Thread(
            target=self._pump, args=(read_fd,), name="raftwright-stderr", daemon=True
        )
        self._thread.start()
        return _Locked(self._out, self._lock)

    def _pump(self, read_fd: int) -> None:
        out = self._out
        assert out is not None
        with os.fdopen(read_fd, "r", encoding="utf-8", errors="replace") as pipe:
            for raw in pipe:
                line = raw.rstrip("\n")
                if not line.strip():
                    continue
                match = _ABSL.match(line)
                if match is not None:
                    level, logger, msg = _ABSL_LEVELS[match.group(1)], "grpc", match.group(3)
                    msg = f"{match.group(2)}: {msg}"
                else:
                    level, logger, msg = "ERROR", "stderr", line
                ts = datetime.datetime.now(datetime.UTC)
                record = {
                    "ts": ts.isoformat(timespec="microseconds").replace("+00:00", "Z"),
                    "level": level,
                    "logger": logger,
                    "msg": msg,
                    "node": self._node,
                }
                with self._lock:
                    out.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")))
                    out.write("\n")

    def stop(self) -> None:
        if self._saved < 0:
            return
        sys.stderr.flush()
        os.dup2(self._saved, 2)  # closes the pipe's last write end: the reader sees EOF
        os.close(self._saved)
        self._saved = -1
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._out is not None:
            self._out.flush()


class _Locked:
    """_Locked serialises the handler's writes with the pump thread's on one stream."""

    def __init__(self, stream: TextIO, lock: threading.Lock) -> None:
        self._stream = stream
        self._lock = lock

    def write(self, text: str) -> int:
        with self._lock:
            return self._stream.write(text)

    def flush(self) -> None:
        with self._lock:
            self._stream.flush()
