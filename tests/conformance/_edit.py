"""Helpers to hand-edit trace files in tests: load, change one event, write back."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

Json = dict[str, Any]


def load(path: Path) -> list[Json]:
    """load reads every line of a trace file (gzipped if it ends in .gz)."""
    text = gzip.decompress(path.read_bytes()).decode() if path.suffix == ".gz" else path.read_text()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def save(path: Path, records: list[Json]) -> None:
    path.write_text("".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records))


def edit_first(path: Path, match: Callable[[Json], bool], change: Callable[[Json], None]) -> int:
    """edit_first changes the first event that matches; returns its line number (1-based)."""
    records = load(path)
    for number, record in enumerate(records, start=1):
        if "format" not in record and match(record):
            change(record)
            save(path, records)
            return number
    raise AssertionError(f"no matching event in {path}")
