"""JSON decoding for the checker: orjson when installed (about 3x faster), else the stdlib.

Parsing is a fixed cost per event, so it bounds the checker's throughput; both decoders
accept bytes and raise a ValueError subclass on a line that does not parse. ``record_key`` is
the compact JSON of a message record, the key the cross-node check matches sends and
receipts by.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

__all__ = ["loads", "record_key"]

loads: Callable[[bytes], Any]
record_key: Callable[[Any], bytes]  # compact JSON of a record: equal records, equal keys

try:
    import orjson
except ImportError:  # pragma: no cover - orjson is a declared dependency
    loads = json.loads
    _encode = json.JSONEncoder(separators=(",", ":")).encode

    def record_key(record: Any) -> bytes:
        return _encode(record).encode()
else:
    loads = orjson.loads
    record_key = orjson.dumps
