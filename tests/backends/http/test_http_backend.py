"""HttpBackend against a real server: ops in both codecs, typed errors, retries that apply a
write once, deadlines, many threads on one pool, and the Backend wrapper."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from atoma_server import Limits, Scope
from http_ops import META, create_op, creates, pull_op, query_op, update_op

from atoma_actors.protocol import (
    Backend,
    ChangeBatch,
    Meta,
    OperationResultError,
    OperationResultOk,
    QueryResultData,
    WriteResultData,
)
from atoma_actors.protocol.errors import (
    AdapterError,
    AuthError,
    BackendUnavailable,
    ClientClosed,
    InternalError,
    LimitsError,
    ValidationError,
)


@pytest.mark.parametrize("fmt", ["json", "msgpack"])
def test_ops_round_trip(server, storage, connect, fmt):
    backend = connect(server.url, format=fmt)
    results, status = backend.execute_ops(
        [
            create_op("users", "u1", {"name": "Ada", "tags": ["x"], "score": 1.5}, "c1"),
            create_op("users", "u2", {"name": "Bob"}, "c2"),
        ],
        META,
    )
    assert status == 200 and all(isinstance(r, OperationResultOk) for r in results)
    assert isinstance(results[0].data, WriteResultData)
    assert results[0].data.results[0].data == {
        "name": "Ada",
        "tags": ["x"],
        "score": 1.5,
        "id": "u1",
        "version": 1,
    }
    results, _ = backend.execute_ops(
        [
            update_op("users", "u1", 1, {"name": "Ada L."}),
            query_op("users", {"filter": {"op": "startsWith", "field": "name", "value": "ada"}}),
            pull_op(limit=10),
            query_op("users", {"filter": {"op": "bogus"}}, op_id="bad"),
        ],
        META,
    )
    update, found, changes, bad = results
    assert update.data.results[0].version == 2
    assert isinstance(found.data, QueryResultData)
    assert [row["name"] for row in found.data.data] == ["Ada L."]
    assert isinstance(changes.data, ChangeBatch)
    assert {(c.id, c.version) for c in changes.data.changes} == {("u1", 2), ("u2", 1)}
    assert isinstance(bad, OperationResultError) and bad.error.kind == "validation"
    assert storage.get("users", "u1")["name"] == "Ada L."
    assert backend.requests_sent == 2


def test_request_level_errors_are_typed_and_not_retried(serve, storage, connect):
    def auth(request):
        token = request.headers.get("authorization")
        if token == "Bearer banned":
            raise AuthError("suspended", code="FORBIDDEN")
        if token != "Bearer ok":
            raise AuthError("who are you")
        return Scope(principal="ok")

    url = serve(storage, auth=auth, limits=Limits(max_ops=2, max_body_bytes=3000)).url
    anonymous = connect(url)
    with pytest.raises(AuthError) as err:
        anonymous.execute_ops([query_op("users")], META)
    assert err.value.code == "UNAUTHORIZED" and anonymous.requests_sent == 1

    banned = connect(url, headers={"authorization": "Bearer banned"})
    with pytest.raises(AuthError, match="suspended") as err:
        banned.execute_ops([query_op("users")], META)
    assert err.value.code == "FORBIDDEN"

    backend = connect(url, headers={"authorization": "Bearer ok"}, format="msgpack")
    with pytest.raises(LimitsError) as err:
        backend.execute_ops([query_op("users", op_id=f"q{i}") for i in range(3)], META)
    assert err.value.details["limit"] == "maxOps"
    with pytest.raises(LimitsError) as err:
        backend.execute_ops([create_op("users", "big", {"s": "x" * 5000})], META)
    assert err.value.code == "PAYLOAD_TOO_LARGE"
    with pytest.raises(ValidationError) as err:  # msgpack cannot even carry it
        backend.execute_ops([query_op("users")], Meta(client_time_ms=2**70))
    assert err.value.code == "UNENCODABLE"
    assert backend.requests_sent == 2
    as_json = connect(url, headers={"authorization": "Bearer ok"})
    with pytest.raises(ValidationError) as err:  # JSON can: the server refuses it
        as_json.execute_ops([query_op("users")], Meta(client_time_ms=2**70))
    assert err.value.code == "NUMBER_OUT_OF_RANGE" and as_json.requests_sent == 1
    # Per-request headers from the ops context override the defaults.
    results, _ = anonymous.execute_ops(
        [query_op("users")], META, context={"headers": {"authorization": "Bearer ok"}}
    )
    assert results[0].ok


class Scripted(httpx.BaseTransport):
    """A real transport with a script of faults, one per request: `pass`, `drop` (the server
    answered, the client never hears it), `503` (a proxy says no), `garbage` (200, not an
    envelope)."""

    def __init__(self, *script: str) -> None:
        self.inner = httpx.HTTPTransport()
        self.script = list(script)
        self.seen = 0
        self.bodies: list[bytes] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.seen += 1
        self.bodies.append(request.read())
        action = self.script.pop(0) if self.script else "pass"
        if action == "503":
            return httpx.Response(503, text="<html>bad gateway</html>")
        if action == "garbage":
            return httpx.Response(
                200, content=b"<html>hello</html>", headers={"content-type": "text/html"}
            )
        response = self.inner.handle_request(request)
        if action == "drop":
            response.read()
            response.close()
            raise httpx.ReadError("connection reset after the server had answered")
        return response

    def close(self) -> None:
        self.inner.close()


def test_a_retried_write_is_applied_once(server, storage, connect):
    connect(server.url).execute_ops([create_op("users", "u1", {"n": 0})], META)
    transport = Scripted("drop", "503")
    backend = connect(server.url, transport=transport)
    results, _ = backend.execute_ops([update_op("users", "u1", 1, {"n": 1})], META)
    item = results[0].data.results[0]
    # The first attempt applied the update; the retry got the stored result, not a conflict.
    assert item.ok and item.version == 2
    assert transport.seen == 3 and len(set(transport.bodies)) == 1  # the same bytes each time
    assert storage.version("users", "u1") == 2
    pulled, _ = backend.execute_ops([pull_op()], META)
    assert [(c.id, c.version) for c in pulled[0].data.changes] == [("u1", 2)]


def test_retries_give_up_with_backend_unavailable(connect):
    with socket_closed_port() as url:
        backend = connect(url, retries=2)
        with pytest.raises(BackendUnavailable) as err:
            backend.execute_ops([query_op("users")], META)
    assert err.value.retryable and err.value.code == "CONNECTION_FAILED"
    assert backend.requests_sent == 3


def test_proxy_errors_are_retried_and_bad_envelopes_are_not(server, connect):
    backend = connect(server.url, transport=Scripted("503", "503", "503"), retries=2)
    with pytest.raises(BackendUnavailable, match="503"):
        backend.execute_ops([query_op("users")], META)
    assert backend.requests_sent == 3

    backend = connect(server.url, transport=Scripted("garbage"))
    with pytest.raises(AdapterError) as err:
        backend.execute_ops([query_op("users")], META)
    assert err.value.code == "BAD_RESPONSE" and not err.value.retryable
    assert backend.requests_sent == 1


def test_internal_errors_are_not_retried(serve, connect):
    class Broken:
        def execute_ops(self, ops, meta, *, deadline=None, context=None):
            raise RuntimeError("bug")

    backend = connect(serve(Broken()).url)
    with pytest.raises(InternalError):
        backend.execute_ops([query_op("users")], META)
    assert backend.requests_sent == 1


def test_deadline_bounds_the_wait_and_the_retries(serve, storage, connect):
    release = threading.Event()

    class Slow:
        def execute_ops(self, ops, meta, *, deadline=None, context=None):
            release.wait(10)
            return storage.execute_ops(ops, meta)

    backend = connect(serve(Slow()).url, retries=5)
    with pytest.raises(BackendUnavailable) as err:
        backend.execute_ops([query_op("users")], META, deadline=time.monotonic() - 1)
    assert err.value.code == "DEADLINE_EXCEEDED" and backend.requests_sent == 0

    started = time.monotonic()
    with pytest.raises(BackendUnavailable) as err:
        backend.execute_ops([query_op("users")], META, deadline=started + 0.3)
    release.set()
    assert err.value.code in ("TIMEOUT", "DEADLINE_EXCEEDED")
    assert time.monotonic() - started < 3  # bounded by the deadline, not timeout x retries


def test_many_threads_share_one_pool(server, storage, connect):
    backend = connect(server.url, max_connections=4, format="msgpack")

    def work(t):
        for i in range(25):
            results, _ = backend.execute_ops([create_op("users", f"t{t}-{i}", {"t": t})], META)
            assert results[0].data.results[0].ok
        return t

    with ThreadPoolExecutor(8) as pool:
        assert sorted(pool.map(work, range(8))) == list(range(8))
    assert len(storage.snapshot("users")) == 200
    # Now and then httpcore's pool hands back a connection another thread just closed
    # (EBADF); that send is retried like any connection error, and applies once.
    assert 200 <= backend.requests_sent <= 205


def test_backend_wrapper_and_close(server, connect):
    backend = connect(server.url, key="primary")
    wrapped = backend.backend
    assert isinstance(wrapped, Backend) and wrapped is backend.backend
    assert wrapped.key == "primary" and wrapped.store.ops_client is backend
    assert wrapped.capabilities.store_persistence == "remote"
    assert wrapped.notify is backend
    wrapped.store.ops_client.execute_ops([creates("users", ["a", "b"])], META)
    wrapped.dispose()
    assert backend.closed
    with pytest.raises(ClientClosed):
        backend.execute_ops([query_op("users")], META)
    with pytest.raises(ClientClosed):
        backend.subscribe(lambda m: None)


def test_close_wakes_a_retry_wait(connect):
    with socket_closed_port() as url:
        backend = connect(url, retries=10, backoff=5.0)  # long waits between attempts
        failed = []

        def call():
            try:
                backend.execute_ops([query_op("users")], META)
            except Exception as exc:
                failed.append(exc)

        worker = threading.Thread(target=call)
        worker.start()
        backend.close()
        worker.join(5)
    assert not worker.is_alive()
    assert len(failed) == 1 and isinstance(failed[0], ClientClosed | BackendUnavailable)


class socket_closed_port:
    """A URL on a loopback port where nothing listens (bound, never listening)."""

    def __enter__(self) -> str:
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def __exit__(self, *exc: object) -> None:
        self.sock.close()
