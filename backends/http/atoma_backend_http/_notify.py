"""The SSE listener behind `HttpBackend.subscribe`: one daemon thread per backend, shared
by every subscriber, reconnecting with backoff until the last subscriber leaves.

After a reconnect it tells subscribers `NotifyMessage(resources=None)` ("anything may have
changed while I was away"), so a sync loop pulls instead of missing changes.
Imports only `atoma_actors.protocol`, httpx and httpx-sse.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping

import httpx
from httpx_sse import SSEError, connect_sse

from atoma_actors.protocol.codecs import validate_as
from atoma_actors.protocol.errors import AtomaError
from atoma_actors.protocol.results import NotifyMessage

from ._retry import Backoff

__all__ = ["NotifyListener", "call_all"]

log = logging.getLogger("atoma_backend_http")

Callback = Callable[[NotifyMessage], None]


class NotifyListener:
    """Reads `GET <notify_url>` and calls the subscribers; start once, stop once."""

    def __init__(
        self,
        url: str,
        *,
        headers: Mapping[str, str],
        transport: httpx.BaseTransport | None,
        connect_timeout: float,
        read_timeout: float,
        backoff: Backoff,
        dispatch: Callable[[NotifyMessage], None],
    ) -> None:
        self._url = url
        self._backoff = backoff
        self._dispatch = dispatch
        # A stream holds its connection for hours: its own client keeps it out of the
        # ops pool, and closing that client is how another thread interrupts a blocked read.
        self._client = httpx.Client(
            headers=dict(headers),
            transport=transport,
            timeout=httpx.Timeout(connect_timeout, read=read_timeout),
        )
        self._stop = threading.Event()
        self.connected = threading.Event()
        self._response: httpx.Response | None = None
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="atoma-http-notify", daemon=True)
        self.connects = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop reading and wait up to `timeout` for the thread (it is a daemon either way)."""
        self._stop.set()
        with self._lock:
            response = self._response
        if response is not None:
            try:
                response.close()
            except Exception:  # closing under a reader may race; the thread exits regardless
                log.debug("closing the notify stream raised", exc_info=True)
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)
        self._client.close()

    def _run(self) -> None:
        failures = 0
        retry_s = 0.0
        while not self._stop.is_set():
            try:
                with connect_sse(self._client, "GET", self._url) as source:
                    with self._lock:
                        self._response = source.response
                    if self._stop.is_set():
                        return
                    if source.response.status_code != 200:
                        raise _Refused(source.response.status_code)
                    for event in source.iter_sse():
                        if event.retry:
                            retry_s = event.retry / 1000
                        if event.event == "ready":
                            failures = 0
                            self.connects += 1
                            self.connected.set()
                            if self.connects > 1:
                                self._dispatch(NotifyMessage(resources=None))
                        elif event.event == "notify":
                            self._handle(event.data)
                        if self._stop.is_set():
                            return
            except (httpx.HTTPError, SSEError, _Refused, OSError, RuntimeError) as exc:
                if self._stop.is_set():
                    return
                log.debug("notify stream to %s lost: %r", self._url, exc)
            finally:
                with self._lock:
                    self._response = None
                self.connected.clear()
            delay = max(retry_s, self._backoff.delay(failures))
            failures += 1
            self._stop.wait(delay)

    def _handle(self, data: str) -> None:
        try:
            message = validate_as(NotifyMessage, json.loads(data))
        except (ValueError, AtomaError):
            log.warning("ignoring a malformed notify event: %.200r", data)
            return
        self._dispatch(message)


class _Refused(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(f"notify stream refused with HTTP {status}")
        self.status = status


def call_all(callbacks: list[Callback], message: NotifyMessage) -> None:
    """Call each subscriber; one that raises is logged and does not stop the others."""
    for callback in callbacks:
        try:
            callback(message)
        except Exception:
            log.exception("a notify subscriber raised")
