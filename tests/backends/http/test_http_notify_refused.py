"""A notify stream the server refuses for good (bad credentials, wrong path, wrong method)
is not retried forever in silence: the listener stops after one attempt, logs a warning,
keeps the typed error in `notify_error` and calls the subscriber's `on_error` once."""

from __future__ import annotations

import logging
import queue
import threading

import pytest
from http_ops import META, create_op

from atoma_actors.protocol.errors import AtomaError, AuthError, NotFoundError, ValidationError

WAIT = 10.0


def _listener_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "atoma-http-notify"]


@pytest.mark.parametrize(
    ("auth_code", "notify_path", "error_type", "code"),
    [
        ("UNAUTHORIZED", "/ops/notify", AuthError, "UNAUTHORIZED"),
        ("FORBIDDEN", "/ops/notify", AuthError, "FORBIDDEN"),
        (None, "/no/such/notify", NotFoundError, "UNKNOWN_PATH"),
        (None, "/ops", ValidationError, "METHOD_NOT_ALLOWED"),
    ],
)
def test_a_permanent_refusal_stops_the_listener(
    serve, storage, connect, caplog, auth_code, notify_path, error_type, code
):
    hits: list[str] = []

    def auth(request):
        if request.url.path.endswith("/notify"):
            hits.append(request.url.path)
            if auth_code is not None:
                raise AuthError("no entry", code=auth_code)
        return

    server = serve(storage, auth=auth)
    backend = connect(server.url, notify_path=notify_path)
    errors: queue.Queue[AtomaError] = queue.Queue()
    before = _listener_threads()
    with caplog.at_level(logging.WARNING, logger="atoma_backend_http"):
        unsubscribe = backend.subscribe(lambda m: None, on_error=errors.put)
        error = errors.get(timeout=WAIT)
    assert isinstance(error, error_type) and error.code == code
    assert backend.notify_error is error
    assert not backend.wait_notify_ready(WAIT)  # answers at once: the stream is dead
    for thread in set(_listener_threads()) - set(before):
        thread.join(WAIT)
        assert not thread.is_alive()
    assert len(hits) <= 1  # one attempt, no reconnect loop
    assert any("refused for good" in r.getMessage() for r in caplog.records)
    assert errors.empty()

    # Ops still work, and a new subscription tries the stream again (once).
    backend.execute_ops([create_op("users", "u1", {})], META)
    again: queue.Queue[AtomaError] = queue.Queue()
    backend.subscribe(lambda m: None, on_error=again.put)
    assert again.get(timeout=WAIT).code == code
    assert errors.get(timeout=WAIT).code == code  # the first subscriber still listens
    unsubscribe()


def test_a_server_error_is_still_retried(serve, storage, connect):
    """5xx answers are transient: the listener keeps trying and connects once they stop."""
    calls: list[int] = []
    ready = threading.Event()

    def auth(request):
        if request.url.path.endswith("/notify"):
            calls.append(1)
            if len(calls) < 3:
                raise RuntimeError("flaky auth backend")  # -> 500
            ready.set()
        return

    server = serve(storage, auth=auth)
    backend = connect(server.url)
    gave_up: list[AtomaError] = []
    backend.subscribe(lambda m: None, on_error=gave_up.append)
    assert ready.wait(WAIT)
    assert backend.wait_notify_ready(WAIT)
    assert backend.notify_error is None and gave_up == []
