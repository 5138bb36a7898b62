"""PeerStream: the sending end of the long-lived RaftPeer.Stream call to one peer.

Why a stream: grpc.aio pays a call set-up (call object, deadline, metadata,
completion-queue tags) per unary call, which profiles showed to be the largest
per-write cost of the node. On one long-lived bidirectional call a message
costs one write; and messages queued while the previous write was still in
progress go out together as one PeerBatch, so small appends (and the
heartbeats and votes between them) coalesce.

Failure handling is Raft's own: if the call fails (the peer restarted, the
connection broke), what was queued is dropped and the next message opens a
new call; the core resends what was lost on its next heartbeat or election
timeout. A call that stops answering (a request written, nothing received
for ``stall_timeout_s``) is treated as failed, so a half-open connection
cannot silence a peer forever.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from grpc import aio

from impl._convert import (
    EntryEncoder,
    MalformedProtoError,
    StreamMessage,
    peer_message_from_pb,
)
from impl._core import AppendRequest, Message, VoteRequest

__all__ = ["PeerStream"]

log = logging.getLogger("raftwright.transport")

# Pause before a new call after a failed one, so a dead peer costs little.
_RETRY_PAUSE_S = 0.02

# The end-of-stream marker of call.read() (grpc's stubs do not declare it).
_EOF: object = getattr(aio, "EOF")  # noqa: B009


class PeerStream:
    """PeerStream queues messages to one peer and writes them in batches on one call.

    ``open_call`` makes a new RaftPeer.Stream call (on the peer's channel)
    whose request serializer passes bytes through: batches are written as
    wire bytes by ``encoder`` (shared by all peers of a node, so each log
    entry is encoded once). Replies read from the call go to ``on_reply``. At most ``max_queued``
    messages wait for a write; beyond that a message is dropped (counted in
    ``dropped``), which Raft tolerates.
    """

    def __init__(
        self,
        peer: str,
        open_call: Callable[[], Any],
        on_reply: Callable[[Message], None],
        *,
        max_queued: int,
        stall_timeout_s: float,
        encoder: EntryEncoder | None = None,
    ) -> None:
        self._encoder = encoder if encoder is not None else EntryEncoder()
        self._peer = peer
        self._open_call = open_call
        self._on_reply = on_reply
        self._max_queued = max_queued
        self._stall_timeout_s = stall_timeout_s
        self._outbox: list[StreamMessage] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        # Loop time of the first reply-expecting write not followed by any receipt.
        self._unanswered_since: float | None = None
        self.dropped = 0
        self.batches_sent = 0
        self.messages_sent = 0
        self.calls_opened = 0

    def send(self, msg: StreamMessage) -> None:
        """send queues msg and returns at once; the writer task sends it."""
        if self._closed:
            return
        if len(self._outbox) >= self._max_queued:
            self.dropped += 1
            return
        self._outbox.append(msg)
        self._wake.set()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name=f"raftwright-stream-{self._peer}"
            )

    async def _run(self) -> None:
        while not self._closed:
            if not self._outbox:
                self._wake.clear()
                await self._wake.wait()
                continue
            failed = await self._session()
            if failed and not self._closed:
                # Raft retries whatever was lost; keep no stale backlog for a dead peer.
                self.dropped += len(self._outbox)
                self._outbox.clear()
                await asyncio.sleep(_RETRY_PAUSE_S)

    async def _session(self) -> bool:
        """_session runs one call until it fails (True) or the stream is closed (False)."""
        loop = asyncio.get_running_loop()
        call = self._open_call()
        self.calls_opened += 1
        self._unanswered_since = None
        reader = loop.create_task(self._read(call))
        try:
            while not self._closed:
                if reader.done():
                    return True
                if not self._outbox:
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                now = loop.time()
                since: float | None = self._unanswered_since
                if since is not None and now - since > self._stall_timeout_s:
                    log.debug("stream to %s stalled; reconnecting", self._peer)
                    return True
                batch, self._outbox = self._outbox, []
                data = self._encoder.peer_batch(batch)
                if since is None and any(isinstance(m, AppendRequest | VoteRequest) for m in batch):
                    self._unanswered_since = now
                await call.write(data)
                self.batches_sent += 1
                self.messages_sent += len(batch)
            return False
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # any failure of the call: drop, reconnect on the next message
            log.debug("stream to %s failed: %s", self._peer, _describe(exc))
            return True
        finally:
            call.cancel()
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)

    async def _read(self, call: Any) -> None:
        try:
            while True:
                pb = await call.read()
                if pb is _EOF:
                    return
                self._unanswered_since = None
                for item in pb.messages:
                    try:
                        msg = peer_message_from_pb(item)
                    except MalformedProtoError as exc:
                        log.warning("malformed reply from %s: %s", self._peer, exc)
                        continue
                    if not self._closed:
                        self._on_reply(msg)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.debug("stream from %s ended: %s", self._peer, _describe(exc))
        finally:
            self._wake.set()

    async def close(self) -> None:
        """close ends the call and the writer task; queued messages are dropped."""
        self._closed = True
        self._wake.set()
        task = self._task
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


def _describe(exc: Exception) -> str:
    if isinstance(exc, aio.AioRpcError):
        return f"{exc.code().name}: {exc.details()}"
    return f"{type(exc).__name__}: {exc}"
