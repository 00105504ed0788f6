"""The notify fan-out of the ops server: one storage subscription, many SSE streams.

`NotifyHub.publish` may be called from any thread (the storage's writer thread, say); each
open stream coalesces what it has not sent yet into one pending message, so a slow reader
costs a set of resource names, never an unbounded queue. `shutdown()` ends every stream so a
server can stop gracefully. Imports only `atoma_actors.protocol`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

from atoma_actors.protocol.codecs import encode
from atoma_actors.protocol.results import NotifyMessage

from ._scope import Scope

__all__ = ["NotifyHub"]

log = logging.getLogger("atoma_server")


class _Stream:
    """Per-subscriber state; touched only on its event loop's thread."""

    __slots__ = ("all", "closed", "event", "loop", "resources", "trace_ids")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.event = asyncio.Event()
        self.resources: set[str] = set()
        self.all = False
        self.trace_ids: list[str] = []
        self.closed = False

    def push(self, message: NotifyMessage | None) -> None:
        if message is None:
            self.closed = True
        elif message.resources is None:
            self.all = True
        else:
            self.resources.update(message.resources)
        if message is not None and message.trace_id and len(self.trace_ids) < 2:
            self.trace_ids.append(message.trace_id)
        self.event.set()

    def take(self) -> NotifyMessage | None:
        if not self.all and not self.resources:
            return None
        # A trace id survives only when the message stands for exactly one write.
        trace = self.trace_ids[0] if len(self.trace_ids) == 1 else None
        message = NotifyMessage(
            resources=None if self.all else sorted(self.resources), trace_id=trace
        )
        self.resources = set()
        self.all = False
        self.trace_ids = []
        return message


class NotifyHub:
    """Fans storage notifications out to the open SSE streams."""

    def __init__(self, source: Any | None) -> None:
        self._source = source
        self._lock = threading.Lock()
        self._streams: set[_Stream] = set()
        self._unsubscribe: Callable[[], None] | None = None
        self._closed = False

    @property
    def has_source(self) -> bool:
        return self._source is not None

    @property
    def open_streams(self) -> int:
        with self._lock:
            return len(self._streams)

    def publish(self, message: NotifyMessage) -> None:
        """Hand `message` to every open stream; safe from any thread."""
        with self._lock:
            streams = list(self._streams)
        for stream in streams:
            try:
                stream.loop.call_soon_threadsafe(stream.push, message)
            except RuntimeError:  # that loop is gone: the stream dies with it
                self._drop(stream)

    def shutdown(self) -> None:
        """End every stream now and refuse new ones; safe from any thread."""
        with self._lock:
            self._closed = True
            streams = list(self._streams)
        for stream in streams:
            with contextlib.suppress(RuntimeError):  # that loop is already gone
                stream.loop.call_soon_threadsafe(stream.push, None)
        self._release_source()

    def _release_source(self) -> None:
        with self._lock:
            unsubscribe, self._unsubscribe = self._unsubscribe, None
        if unsubscribe is not None:
            try:
                unsubscribe()
            except Exception:
                log.exception("unsubscribing from the notify source failed")

    def _add(self, stream: _Stream) -> bool:
        source = None
        with self._lock:
            if self._closed:
                return False
            self._streams.add(stream)
            if self._unsubscribe is None:
                source = self._source
        if source is not None:
            # Subscribe while a stream is open only, so an idle server holds no subscription.
            unsubscribe = source.subscribe(self.publish)
            with self._lock:
                if self._unsubscribe is None and self._streams:
                    self._unsubscribe, unsubscribe = unsubscribe, None
            if unsubscribe is not None:
                unsubscribe()
        return True

    def _drop(self, stream: _Stream) -> None:
        with self._lock:
            self._streams.discard(stream)
            idle = not self._streams
        if idle:
            self._release_source()

    async def stream(
        self,
        scope: Scope,
        wanted: Iterable[str] | None,
        *,
        heartbeat: float,
        retry_ms: int,
    ) -> AsyncIterator[bytes]:
        """The SSE body: `retry:` and a `ready` event, then `notify` events and `:hb`
        heartbeat comments until the client leaves or the hub shuts down."""
        stream = _Stream(asyncio.get_running_loop())
        wanted = list(wanted) if wanted is not None else None
        if not self._add(stream):
            return
        try:
            yield f"retry: {retry_ms}\nevent: ready\ndata: {{}}\n\n".encode()
            while True:
                try:
                    await asyncio.wait_for(stream.event.wait(), heartbeat)
                except TimeoutError:
                    yield b":hb\n\n"
                    continue
                stream.event.clear()
                if stream.closed:
                    return
                message = stream.take()
                if message is None:
                    continue
                message = scope.notify(message, wanted)
                if message is not None:
                    yield b"event: notify\ndata: " + encode(message) + b"\n\n"
        finally:
            self._drop(stream)
