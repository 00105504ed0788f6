"""GET /ops/notify: the SSE stream (retry hint, ready, notify events, heartbeats), its
filters and scopes, its notify source, and a clean end on shutdown."""

from __future__ import annotations

import json
import threading

import httpx
from atoma_server import Scope
from httpx_sse import connect_sse
from server_wire import create, post, request

from atoma_actors.protocol.results import NotifyMessage


def events(client, url, **params):
    """The SSE events of one stream, as a context manager yielding an iterator."""
    return connect_sse(client, "GET", url + "/ops/notify", params=params)


def test_stream_sends_retry_ready_notify_and_heartbeats(serve, storage):
    url = serve(storage).url
    with httpx.Client(timeout=5) as client, client.stream("GET", url + "/ops/notify") as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = response.iter_lines()
        assert next(lines) == "retry: 1000"
        assert next(lines) == "event: ready"
        assert next(lines) == "data: {}"
        assert next(lines) == ""
        post(client, url, request(create("w", "users", "u1", {}), traceId="trace-1"))
        seen = []
        for line in lines:
            seen.append(line)
            if line.startswith("data:") and "users" in line:
                break
        assert "event: notify" in seen
        assert json.loads(seen[-1].removeprefix("data: ")) == {
            "resources": ["users"],
            "traceId": "trace-1",
        }
        # Heartbeats keep idle proxies from closing the stream.
        for line in lines:
            if line == ":hb":
                break


def test_resources_filter_and_tenant_scope(serve, storage, http):
    def auth(request):
        tenant = request.headers.get("x-tenant")
        return Scope(resource_prefix=f"{tenant}:") if tenant else None

    url = serve(storage, auth=auth).url
    with (
        httpx.Client(timeout=5) as client,
        events(client, url, resources="notes") as source,
        httpx.Client(timeout=5, headers={"x-tenant": "t1"}) as tenant_client,
        connect_sse(tenant_client, "GET", url + "/ops/notify") as tenant_source,
    ):
        stream = source.iter_sse()
        tenant_stream = tenant_source.iter_sse()
        assert next(stream).event == "ready" and next(tenant_stream).event == "ready"

        post(http, url, request(create("w", "users", "u1", {})))
        post(http, url, request(create("w", "notes", "n1", {})), headers={"x-tenant": "t2"})
        post(http, url, request(create("w", "notes", "n1", {})), headers={"x-tenant": "t1"})
        post(http, url, request(create("w", "notes", "n1", {})))

        notify = next(e for e in stream if e.event == "notify")
        assert json.loads(notify.data) == {"resources": ["notes"]}
        mine = next(e for e in tenant_stream if e.event == "notify")
        assert json.loads(mine.data)["resources"] == ["notes"]  # t1:notes, prefix stripped
    assert storage.get("t1:notes", "n1") is not None


class ManualSource:
    """A notify source the test drives from its own thread, recording subscriptions."""

    def __init__(self) -> None:
        self.callbacks = []
        self.subscribed = threading.Event()
        self.released = threading.Event()

    def subscribe(self, callback):
        self.callbacks.append(callback)
        self.subscribed.set()

        def unsubscribe():
            self.callbacks.remove(callback)
            self.released.set()

        return unsubscribe


def test_external_source_is_subscribed_while_streams_are_open(serve, storage):
    source = ManualSource()
    url = serve(storage, notify=source).url
    assert not source.subscribed.is_set()  # an idle server holds no subscription
    with httpx.Client(timeout=5) as client:
        with events(client, url) as sse:
            stream = sse.iter_sse()
            assert next(stream).event == "ready"
            assert source.subscribed.is_set()
            publisher = threading.Thread(
                target=lambda: source.callbacks[0](NotifyMessage(resources=["a", "b"]))
            )
            publisher.start()
            publisher.join()
            assert json.loads(next(stream).data) == {"resources": ["a", "b"]}
        # The client left: within a heartbeat or two the server notices and lets go.
        assert source.released.wait(5)
    assert source.callbacks == []


def test_without_a_source_the_server_announces_its_own_writes(serve, storage, http):
    class NoSubscribe:
        def execute_ops(self, ops, meta, *, deadline=None, context=None):
            return storage.execute_ops(ops, meta)

    url = serve(NoSubscribe()).url
    with httpx.Client(timeout=5) as client, events(client, url) as sse:
        stream = sse.iter_sse()
        assert next(stream).event == "ready"
        post(http, url, request(create("w", "users", "u1", {})))
        assert json.loads(next(e for e in stream if e.event == "notify").data) == {
            "resources": ["users"]
        }


def test_shutdown_ends_open_streams_cleanly(serve, storage):
    server = serve(storage, heartbeat=30.0)  # no heartbeat will wake the stream by itself
    ready, ended = threading.Event(), threading.Event()
    errors = []

    def read():
        try:
            with httpx.Client(timeout=10) as client, events(client, server.url) as sse:
                for event in sse.iter_sse():
                    if event.event == "ready":
                        ready.set()
        except Exception as exc:  # the test fails below if the stream broke instead
            errors.append(exc)
        ended.set()

    reader = threading.Thread(target=read)
    reader.start()
    assert ready.wait(5)
    assert server.app.state.atoma_hub.open_streams == 1
    server.stop(timeout=3)  # well under uvicorn's graceful timeout of 5 s
    assert ended.wait(5) and errors == []
    reader.join(5)
