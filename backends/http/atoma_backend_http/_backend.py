"""`HttpBackend`: an ops client that sends `{meta, ops}` to an Atoma ops server.

One pooled `httpx.Client` serves every thread. A failure is retried only when retrying can
help (the connection failed, the server answered 5xx, or the error says `retryable`), with
exponential backoff, never past the caller's deadline, and always with the same body: the
idempotency keys inside make a retried write apply once. Request-level errors become the
typed errors of `atoma_actors.protocol.errors`. Imports only `atoma_actors.protocol`, httpx
and httpx-sse.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import httpx

from atoma_actors.protocol.backend import Backend, Capabilities, Endpoint, OpsOutcome
from atoma_actors.protocol.codecs import JSON, MSGPACK, decode_as, encode, media_type
from atoma_actors.protocol.errors import (
    AdapterError,
    AtomaError,
    AuthError,
    BackendUnavailable,
    ClientClosed,
    LimitsError,
    ValidationError,
    error_from_standard,
)
from atoma_actors.protocol.ops import Meta, Operation, OpsRequest
from atoma_actors.protocol.results import NotifyMessage, OpsResponse, OpsResponseOk

from ._notify import Callback, ErrorCallback, NotifyListener, call_all
from ._retry import Backoff

__all__ = ["HttpBackend"]

log = logging.getLogger("atoma_backend_http")


def _status_error(status: int, reason: str) -> AtomaError:
    """The error for an answer that carries no envelope (a proxy page, a crash)."""
    message = f"server answered HTTP {status} without an ops envelope ({reason})"
    if status >= 500:
        return BackendUnavailable(message, code=f"HTTP_{status}")
    if status == 413:
        return LimitsError(message, code="PAYLOAD_TOO_LARGE")
    if status in (401, 403):
        return AuthError(message, code="FORBIDDEN" if status == 403 else "UNAUTHORIZED")
    return AdapterError(message, code=f"HTTP_{status}")


class HttpBackend:
    """Talks to `POST {base_url}/ops`; `.backend` wraps it for `create_client(backend=...)`."""

    def __init__(
        self,
        base_url: str,
        *,
        headers: Mapping[str, str] | None = None,
        timeout: float = 10.0,
        retries: int = 3,
        backoff: Backoff | float = 0.05,
        format: Literal["json", "msgpack"] = "json",
        transport: httpx.BaseTransport | None = None,
        key: str | None = None,
        max_connections: int = 64,
        ops_path: str = "/ops",
        notify_path: str = "/ops/notify",
        notify_read_timeout: float = 60.0,
    ) -> None:
        if format not in ("json", "msgpack"):
            raise ValueError(f"format must be 'json' or 'msgpack', not {format!r}")
        if retries < 0:
            raise ValueError("retries must be >= 0")
        self.base_url = base_url.rstrip("/")
        self.key = key or f"http:{self.base_url}"
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff if isinstance(backoff, Backoff) else Backoff(base=backoff)
        self.media_type = MSGPACK if format == "msgpack" else JSON
        self._headers = dict(headers or {})
        self._transport = transport
        self._ops_url = self.base_url + ops_path
        self._notify_url = self.base_url + notify_path
        self._notify_read_timeout = notify_read_timeout
        self._client = httpx.Client(
            headers=self._headers,
            transport=transport,
            timeout=timeout,
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
        )
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._subscribers: dict[int, Callback] = {}
        self._error_callbacks: dict[int, ErrorCallback] = {}
        self._next_token = 0
        self._listener: NotifyListener | None = None
        self._backend: Backend | None = None
        self._sent = 0

    # -- ops ---------------------------------------------------------------------------

    def execute_ops(
        self,
        ops: Sequence[Operation],
        meta: Meta,
        *,
        deadline: float | None = None,
        context: dict[str, Any] | None = None,
    ) -> OpsOutcome:
        """Send the ops and return `(results, status)`; `context["headers"]` are added to
        this request. Raises a typed `AtomaError` for a request-level failure."""
        if self._closed.is_set():
            raise ClientClosed("the HTTP backend is closed")
        try:
            body = encode(OpsRequest(meta=meta, ops=list(ops)), self.media_type)
        except (OverflowError, TypeError, ValueError) as exc:
            # e.g. an integer wider than 64 bits in msgpack, or NaN in JSON: bad input
            raise ValidationError(
                f"the request cannot be encoded: {exc}", code="UNENCODABLE"
            ) from exc
        headers = {"content-type": self.media_type, "accept": self.media_type}
        if context and isinstance(context.get("headers"), Mapping):
            headers.update(context["headers"])
        attempt = 0
        while True:
            try:
                return self._send_once(body, headers, len(ops), deadline)
            except AtomaError as exc:
                if not exc.retryable or attempt >= self.retries:
                    raise
                delay = self.backoff.delay(attempt)
                if deadline is not None and time.monotonic() + delay >= deadline:
                    raise
                if self._closed.wait(delay):
                    raise ClientClosed("the HTTP backend was closed while retrying") from exc
                attempt += 1

    def _send_once(
        self, body: bytes, headers: dict[str, str], count: int, deadline: float | None
    ) -> OpsOutcome:
        timeout = self.timeout
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BackendUnavailable(
                    "the deadline passed before the request was sent", code="DEADLINE_EXCEEDED"
                )
            timeout = min(timeout, left)
        try:
            with self._lock:
                self._sent += 1
            response = self._client.post(
                self._ops_url, content=body, headers=headers, timeout=timeout
            )
        except httpx.TimeoutException as exc:
            raise BackendUnavailable(
                f"no answer from {self._ops_url} in {timeout:.3g}s", code="TIMEOUT"
            ) from exc
        except httpx.TransportError as exc:
            raise BackendUnavailable(
                f"cannot reach {self._ops_url}: {exc!r}", code="CONNECTION_FAILED"
            ) from exc
        except RuntimeError as exc:  # httpx raises this when the client was closed under us
            raise ClientClosed("the HTTP backend is closed") from exc
        return self._interpret(response, count)

    def _interpret(self, response: httpx.Response, count: int) -> OpsOutcome:
        status = response.status_code
        try:
            envelope = decode_as(
                OpsResponse, response.content, response.headers.get("content-type")
            )
        except AtomaError as exc:
            if 200 <= status < 300:
                raise AdapterError(
                    f"malformed ops response: {exc.message}", code="BAD_RESPONSE"
                ) from exc
            raise _status_error(status, exc.message) from exc
        if isinstance(envelope, OpsResponseOk):
            if not 200 <= status < 300:
                raise _status_error(status, "an ok envelope with an error status")
            results = list(envelope.data.results)
            if len(results) != count:
                raise AdapterError(
                    f"server answered {len(results)} results for {count} ops", code="BAD_RESPONSE"
                )
            return results, status
        error = error_from_standard(envelope.error)
        if status in (502, 503, 504) and not error.retryable:
            raise BackendUnavailable(error.message, code=error.code, details=error.details)
        raise error

    # -- notify ------------------------------------------------------------------------

    def subscribe(
        self, callback: Callback, *, on_error: ErrorCallback | None = None
    ) -> Callable[[], None]:
        """Call `callback(NotifyMessage)` when the server reports changes (on the listener's
        thread); returns an idempotent unsubscribe. The SSE stream runs while anyone listens.

        A refusal retrying cannot fix (400/401/403/404/405/410) stops the stream: it is logged,
        kept in `notify_error`, and `on_error(error)` is called once. The next `subscribe`
        tries again with a new stream."""
        if self._closed.is_set():
            raise ClientClosed("the HTTP backend is closed")
        with self._lock:
            token = self._next_token
            self._next_token += 1
            self._subscribers[token] = callback
            if on_error is not None:
                self._error_callbacks[token] = on_error
            if self._listener is not None and self._listener.failed:
                self._listener.stop(timeout=0)
                self._listener = None
            if self._listener is None:
                self._listener = NotifyListener(
                    self._notify_url,
                    headers=self._headers,
                    transport=self._transport,
                    connect_timeout=self.timeout,
                    read_timeout=self._notify_read_timeout,
                    backoff=self.backoff,
                    dispatch=self._dispatch,
                    on_failed=self._notify_failed,
                )
                self._listener.start()

        def unsubscribe() -> None:
            with self._lock:
                self._subscribers.pop(token, None)
                self._error_callbacks.pop(token, None)
                listener = self._listener if not self._subscribers else None
                if listener is not None:
                    self._listener = None
            if listener is not None:
                listener.stop()

        return unsubscribe

    def wait_notify_ready(self, timeout: float | None = None) -> bool:
        """Block until the notify stream is connected (True), or `timeout` passes or the
        stream is refused for good (False)."""
        with self._lock:
            listener = self._listener
        return listener is not None and listener.wait_ready(timeout)

    @property
    def notify_error(self) -> AtomaError | None:
        """Why the notify stream gave up (a permanent refusal), or None while it is fine."""
        with self._lock:
            listener = self._listener
        return listener.error if listener is not None else None

    def _notify_failed(self, error: AtomaError) -> None:
        with self._lock:
            callbacks = list(self._error_callbacks.values())
        for callback in callbacks:
            try:
                callback(error)
            except Exception:
                log.exception("a notify error callback raised")

    def _dispatch(self, message: NotifyMessage) -> None:
        with self._lock:
            callbacks = list(self._subscribers.values())
        call_all(callbacks, message)

    # -- lifecycle ---------------------------------------------------------------------

    @property
    def backend(self) -> Backend:
        """This ops client as a `Backend` (remote persistence, notify over SSE)."""
        if self._backend is None:
            self._backend = Backend(
                self.key,
                store=Endpoint(self),
                capabilities=Capabilities("remote"),
                notify=self,
                dispose=self.close,
            )
        return self._backend

    @property
    def requests_sent(self) -> int:
        """HTTP requests sent to the ops endpoint so far, retries included."""
        return self._sent

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def close(self) -> None:
        """Stop the notify stream, wake any retry wait and close the connection pool."""
        self._closed.set()
        with self._lock:
            listener, self._listener = self._listener, None
            self._subscribers.clear()
            self._error_callbacks.clear()
        if listener is not None:
            listener.stop()
        self._client.close()

    def __enter__(self) -> HttpBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"HttpBackend({self.base_url!r}, format={media_type(self.media_type)!r})"
