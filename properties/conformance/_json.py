"""JSON decoding for the checker: orjson when installed (about 3x faster), else the stdlib.

Parsing is a fixed cost per event, so it bounds the checker's throughput; both decoders
accept bytes and raise a ValueError subclass on a line that does not parse.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

__all__ = ["loads"]

loads: Callable[[bytes], Any]
try:
    import orjson
except ImportError:  # pragma: no cover - orjson is a declared dependency
    loads = json.loads
else:
    loads = orjson.loads
