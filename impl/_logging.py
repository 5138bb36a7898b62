"""Log output of ``raftwright node``: human text or one JSON object per line.

JSON lines are for log shippers (Loki, Elasticsearch, journald forwarding):
each record is one line with the keys ts (UTC, RFC 3339 with microseconds),
level, logger, msg and node (the node id), plus exc when an exception is
attached. Nothing else is printed on stderr in between, so every line parses.
"""

from __future__ import annotations

import datetime
import json
import logging
import sys
from typing import TextIO

__all__ = ["LOG_FORMATS", "JsonFormatter", "configure_logging"]

LOG_FORMATS = ("text", "json")


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
    level: str, log_format: str, node: str | None = None, stream: TextIO | None = None
) -> None:
    """configure_logging replaces the root handlers with one handler on stream (stderr)."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {LOG_FORMATS}, got {log_format!r}")
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
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
