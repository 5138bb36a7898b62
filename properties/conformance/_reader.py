"""Reading trace files: ndjson segments (one per process run), tolerant of torn lines.

A file holds one segment per run of the node: a header line, then one event per line. A
process killed mid-write leaves a torn line; the producer starts its next run on a fresh
line, so a line that does not parse is tolerated when it is the last line of the file or
the line right before a header. Anywhere else it is an error: the trace is corrupt.

A file named ``*.ndjson.gz`` is the same, gzip-compressed (the committed corpus is stored so);
a gzip stream cut short is an unreadable file, not a torn line.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from properties.conformance._json import loads

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "NodeTrace", "Segment", "TraceError", "read_traces"]

FORMAT_NAME = "raftwright-trace"
FORMAT_VERSION = 1

Json = dict[str, Any]


class TraceError(ValueError):
    """TraceError: a file is not a readable trace (wrong format, version or corrupt line)."""


@dataclass(slots=True)
class Segment:
    """Segment is one run of a node: its header and its events, with their line numbers."""

    header: Json
    first_line: int
    events: list[Json] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    torn_tail: bool = False


@dataclass(slots=True)
class NodeTrace:
    """NodeTrace is everything one node recorded, in order."""

    path: Path
    node: str
    cluster: str
    voters: list[str]
    segments: list[Segment]

    @property
    def event_count(self) -> int:
        return sum(len(s.events) for s in self.segments)


def _check_header(record: Json, path: Path, line: int) -> None:
    if record.get("version") != FORMAT_VERSION:
        raise TraceError(
            f"{path}:{line}: trace format version {record.get('version')!r}, "
            f"this checker reads version {FORMAT_VERSION}"
        )
    for key in ("node", "cluster", "voters"):
        if key not in record:
            raise TraceError(f"{path}:{line}: header lacks {key!r}")


def read_trace(path: Path) -> NodeTrace:
    """read_trace parses one node's file into segments."""
    segments: list[Segment] = []
    torn: int | None = None
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise TraceError(f"{path}: not a readable gzip file ({exc})") from None
    for number, text in enumerate(data.split(b"\n"), start=1):
        if not text.strip():
            continue
        try:
            record = loads(text)
        except ValueError:
            if torn is not None:
                raise TraceError(f"{path}:{torn}: corrupt line") from None
            torn = number
            continue
        is_header = record.get("format") == FORMAT_NAME
        if torn is not None:
            if not is_header:
                raise TraceError(f"{path}:{torn}: corrupt line") from None
            if segments:
                segments[-1].torn_tail = True
            torn = None
        if is_header:
            _check_header(record, path, number)
            segments.append(Segment(record, number))
            continue
        if not segments:
            raise TraceError(f"{path}:{number}: event before the first header")
        segments[-1].events.append(record)
        segments[-1].lines.append(number)
    if torn is not None and segments:
        segments[-1].torn_tail = True
    if not segments:
        raise TraceError(f"{path}: no trace header (empty or not a raftwright trace)")
    first = segments[0].header
    for seg in segments[1:]:
        # a restart may start from another initial configuration (a joined node restarts
        # with the configuration it learned), never as another node or in another cluster
        if seg.header["node"] != first["node"] or seg.header["cluster"] != first["cluster"]:
            raise TraceError(f"{path}:{seg.first_line}: segment is for another node or cluster")
    return NodeTrace(path, first["node"], first["cluster"], list(first["voters"]), segments)


def trace_files(paths: Iterable[Path | str]) -> list[Path]:
    """trace_files expands directories to the ``*.ndjson`` and ``*.ndjson.gz`` files inside
    them (recursively)."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = [*path.rglob("*.ndjson"), *path.rglob("*.ndjson.gz")]
            files.extend(sorted(found))
        elif path.exists():
            files.append(path)
        else:
            raise TraceError(f"{path}: no such file or directory")
    return files


def read_traces(paths: Iterable[Path | str]) -> list[NodeTrace]:
    """read_traces reads every trace file named (directories are searched)."""
    return [read_trace(path) for path in trace_files(paths)]
