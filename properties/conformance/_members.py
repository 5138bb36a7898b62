"""Membership in replay: the run's universe of node ids and CONFIG entries (thesis 4.1).

The spec numbers nodes 0..n-1 over a fixed universe and says which of them vote with a
configuration (``spec.Config``); the impl names nodes by strings and writes each
configuration change as a CONFIG entry holding the whole new configuration as compact JSON
with sorted keys, ``{"learners": {id: address}, "voters": {id: address}}``.

* The universe is every id the run mentions: trace headers (node, voters, learners),
  message senders and receivers, membership inputs, snapshot configurations and the
  configurations of CONFIG entries. ``scan_universe`` finds them with one pass over each
  file's bytes, before any replay, so every node of a run numbers the ids alike.
* A CONFIG entry's spec counterpart carries the JSON bytes as its payload (so the log digest
  chains the very bytes the impl did) and the decoded configuration. When the spec leader
  appends a change itself, the checker writes its payload as the impl must have: the new
  configuration, with the addresses of the configuration before it and the new member's
  address from the ``member`` input.
"""

from __future__ import annotations

import gzip
import json
import re
import zlib
from binascii import a2b_base64
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from spec import Config, EntryKind, NodeState, latest_config

__all__ = [
    "ConfigError",
    "Universe",
    "config_addresses",
    "decode_config",
    "encode_config",
    "scan_universe",
    "with_config_payload",
]

_IDS = re.compile(rb'"(?:from|to|node)":"((?:[^"\\]|\\.)*)"')
_LISTS = re.compile(rb'"(?:voters|learners)":\[([^\]]*)\]')
_CONFIG_ENTRIES = re.compile(rb'\[\d+,\d+,2,"([A-Za-z0-9+/=]*)"\]')


class ConfigError(ValueError):
    """ConfigError: a CONFIG entry's payload is not a configuration."""


@dataclass(frozen=True, slots=True)
class Universe:
    """Universe is every node id of one run (sorted) and the addresses its configs name."""

    names: tuple[str, ...]
    addresses: Mapping[str, str]


def _parse(data: bytes) -> dict[str, dict[str, str]]:
    try:
        raw = json.loads(data)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(f"configuration entry is not JSON: {exc}") from None
    if not isinstance(raw, dict) or set(raw) - {"voters", "learners"}:
        raise ConfigError(f"not a configuration: {data[:80]!r}")
    out: dict[str, dict[str, str]] = {}
    for part in ("voters", "learners"):
        members = raw.get(part, {})
        if not isinstance(members, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in members.items()
        ):
            raise ConfigError(f"configuration {part} is not an object of id -> address")
        out[part] = members
    return out


def config_addresses(data: bytes) -> dict[str, str]:
    """config_addresses is id -> address of every member a CONFIG payload names."""
    parsed = _parse(data)
    return {**parsed["voters"], **parsed["learners"]}


def decode_config(data: bytes, to_spec: Mapping[str, int]) -> Config:
    """decode_config is the spec configuration a CONFIG payload stands for."""
    parsed = _parse(data)
    try:
        voters = tuple(sorted(to_spec[name] for name in parsed["voters"]))
        learners = tuple(sorted(to_spec[name] for name in parsed["learners"]))
        return Config(voters, learners)
    except KeyError as exc:
        raise ConfigError(f"configuration names {exc} outside the run's universe") from None
    except ValueError as exc:
        raise ConfigError(f"not a valid configuration: {exc}") from None


def encode_config(config: Config, names: tuple[str, ...], addresses: Mapping[str, str]) -> bytes:
    """encode_config is the payload the impl writes for ``config`` (the membership contract).

    A member whose address is unknown gets "" (the impl's address of a peer configured
    without one).
    """
    body = {
        "learners": {names[i]: addresses.get(names[i], "") for i in config.learners},
        "voters": {names[i]: addresses.get(names[i], "") for i in config.voters},
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def _file_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        try:
            return gzip.decompress(data)
        except (OSError, EOFError, zlib.error):
            return b""  # reported as unreadable by the reader
    return data


def _names(raw: bytes) -> list[str]:
    text = b"[" + raw + b"]"
    try:
        found: Any = json.loads(text)
    except ValueError:
        return []
    return [name for name in found if isinstance(name, str)]


def scan_universe(files: Iterable[Path]) -> dict[Path, Universe]:
    """scan_universe is the universe of every directory (run) the trace files are in."""
    names: dict[Path, set[str]] = {}
    addresses: dict[Path, dict[str, str]] = {}
    for path in files:
        try:
            data = _file_bytes(path)
        except OSError:
            continue  # reported by the reader
        found = names.setdefault(path.parent, set())
        book = addresses.setdefault(path.parent, {})
        # the same few ids occur on every line: decode each distinct one once
        for raw in set(_IDS.findall(data)):
            found.add(json.loads(b'"' + raw + b'"'))
        for raw in set(_LISTS.findall(data)):
            found.update(_names(raw))
        for match in _CONFIG_ENTRIES.finditer(data):
            try:
                members = config_addresses(a2b_base64(match.group(1)))
            except (ConfigError, ValueError):
                continue  # replay reports the entry itself
            found.update(members)
            for name, address in members.items():
                book.setdefault(name, address)
    return {
        parent: Universe(tuple(sorted(found)), addresses[parent]) for parent, found in names.items()
    }


def with_config_payload(
    state: NodeState,
    member: Mapping[str, Any],
    names: tuple[str, ...],
    addresses: Mapping[str, str],
) -> NodeState:
    """with_config_payload writes the impl's JSON into the spec leader's new CONFIG entry.

    The impl's entry is the new configuration with the addresses of the configuration before
    it (its previous CONFIG entry, or the run's address book for the initial one) and the
    new member's address from the ``member`` input.
    """
    log = state.log
    entry = log[-1] if log else None
    if entry is None or entry.kind is not EntryKind.CONFIG or entry.config is None:
        raise ConfigError("the change appended no configuration entry")
    index, _ = latest_config(log, len(log) - 1)
    book = dict(addresses)
    if index > 0:
        book.update(config_addresses(log[index - 1].payload))
    if member["op"] == "add":
        book[member["node"]] = member.get("addr", "")
    payload = encode_config(entry.config, names, book)
    return replace(state, log=(*log[:-1], replace(entry, payload=payload)))
