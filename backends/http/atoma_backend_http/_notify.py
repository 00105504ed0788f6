"""The SSE listener behind `HttpBackend.subscribe`: one daemon thread per backend, shared
by every subscriber, reconnecting with backoff until the last subscriber leaves.

After a reconnect it tells subscribers `NotifyMessage(resources=None)` ("anything may have
changed while I was away"), so a sync loop pulls instead of missing changes. A refusal that
retrying cannot fix (400, 401, 403, 404, 405, 410: bad credentials, wrong path) ends the
listener: it logs a warning, keeps the typed error in `error` and reports it once.
Imports only `atoma_actors.protocol`, httpx and httpx-sse.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping

import httpx
from httpx_sse import SSEError, connect_sse

from atoma_actors.protocol.codecs import decode, validate_as
from atoma_actors.protocol.errors import (
    AdapterError,
    AtomaError,
    AuthError,
    NotFoundError,
    error_from_standard,
)
from atoma_actors.protocol.results import NotifyMessage, OpsResponseError

from ._retry import Backoff

__all__ = ["PERMANENT_STATUSES", "ErrorCallback", "NotifyListener", "call_all"]

log = logging.getLogger("atoma_backend_http")

Callback = Callable[[NotifyMessage], None]
ErrorCallback = Callable[[AtomaError], None]

# Statuses the same request would get again: reconnecting cannot help.
PERMANENT_STATUSES = frozenset({400, 401, 403, 404, 405, 410})


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
        on_failed: ErrorCallback | None = None,
    ) -> None:
        self._url = url
        self._backoff = backoff
        self._dispatch = dispatch
        self._on_failed = on_failed
        # A stream holds its connection for hours: its own client keeps it out of the
        # ops pool, and closing that client is how another thread interrupts a blocked read.
        self._client = httpx.Client(
            headers=dict(headers),
            transport=transport,
            timeout=httpx.Timeout(connect_timeout, read=read_timeout),
        )
        self._stop = threading.Event()
        self.connected = threading.Event()
        self.error: AtomaError | None = None
        """Why the listener gave up for good (a permanent refusal), else None."""
        self._changed = threading.Condition()
        self._response: httpx.Response | None = None
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="atoma-http-notify", daemon=True)
        self.connects = 0

    def start(self) -> None:
        self._thread.start()

    @property
    def failed(self) -> bool:
        return self.error is not None

    def wait_ready(self, timeout: float | None) -> bool:
        """Wait until the stream is live (True); False after `timeout` or once it failed."""
        with self._changed:
            self._changed.wait_for(lambda: self.connected.is_set() or self.failed, timeout)
        return self.connected.is_set()

    def _set_connected(self) -> None:
        with self._changed:
            self.connected.set()
            self._changed.notify_all()

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
                    status = source.response.status_code
                    if status in PERMANENT_STATUSES:
                        self._fail(_refusal(source.response))
                        return
                    if status != 200:
                        raise _Refused(status)
                    for event in source.iter_sse():
                        if event.retry:
                            retry_s = event.retry / 1000
                        if event.event == "ready":
                            failures = 0
                            self.connects += 1
                            self._set_connected()
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

    def _fail(self, error: AtomaError) -> None:
        log.warning(
            "notify stream to %s refused for good, not reconnecting: %s (%s)",
            self._url,
            error.message,
            error.code,
        )
        with self._changed:
            self.error = error
            self._changed.notify_all()
        if self._on_failed is not None:
            try:
                self._on_failed(error)
            except Exception:
                log.exception("a notify error callback raised")

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


def _refusal(response: httpx.Response) -> AtomaError:
    """The typed error of a refused stream: the server's envelope when it sent one."""
    status = response.status_code
    try:
        body = response.read()
        envelope = validate_as(OpsResponseError, decode(body, response.headers.get("content-type")))
        return error_from_standard(envelope.error)
    except (httpx.HTTPError, AtomaError):
        message = f"notify stream refused with HTTP {status}"
        if status in (401, 403):
            return AuthError(message, code="FORBIDDEN" if status == 403 else "UNAUTHORIZED")
        if status in (404, 410):
            return NotFoundError(message, code=f"HTTP_{status}")
        return AdapterError(message, code=f"HTTP_{status}")


def call_all(callbacks: list[Callback], message: NotifyMessage) -> None:
    """Call each subscriber; one that raises is logged and does not stop the others."""
    for callback in callbacks:
        try:
            callback(message)
        except Exception:
            log.exception("a notify subscriber raised")
