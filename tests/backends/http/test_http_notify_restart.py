"""Notify over SSE through HttpBackend, and a server restart mid-run: ops fail with a
retryable error while it is down, recover on the same port, lose no acknowledged write; the
notify stream reconnects and says "resync"."""

from __future__ import annotations

import queue
import threading

import pytest
from http_ops import META, create_op, pull_op, query_op

from atoma_actors.protocol import NotifyMessage
from atoma_actors.protocol.errors import BackendUnavailable


def listener_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "atoma-http-notify"]


def test_notify_arrives_after_a_write_and_stops_on_unsubscribe(server, connect):
    backend = connect(server.url)
    got: queue.Queue[NotifyMessage] = queue.Queue()
    before = len(listener_threads())
    unsubscribe = backend.subscribe(got.put)
    also: queue.Queue[NotifyMessage] = queue.Queue()
    unsubscribe_also = backend.subscribe(also.put)
    assert len(listener_threads()) == before + 1  # one stream serves every subscriber
    assert backend.wait_notify_ready(5)

    backend.execute_ops([create_op("users", "u1", {})], META)
    assert got.get(timeout=5).resources == ["users"]
    assert also.get(timeout=5).resources == ["users"]

    unsubscribe()
    unsubscribe()  # idempotent
    assert len(listener_threads()) == before + 1  # someone still listens
    unsubscribe_also()
    assert len(listener_threads()) == before
    assert not backend.wait_notify_ready(0)


def test_a_raising_subscriber_does_not_silence_the_others(server, connect):
    backend = connect(server.url)
    got: queue.Queue[NotifyMessage] = queue.Queue()

    def broken(message):
        raise RuntimeError("subscriber bug")

    backend.subscribe(broken)
    backend.subscribe(got.put)
    assert backend.wait_notify_ready(5)
    backend.execute_ops([create_op("notes", "n1", {})], META)
    backend.execute_ops([create_op("users", "u1", {})], META)
    seen = set()
    while seen != {"notes", "users"}:
        seen.update(got.get(timeout=5).resources or [])


def test_close_stops_the_notify_thread(server, connect):
    backend = connect(server.url)
    before = len(listener_threads())
    backend.subscribe(lambda m: None)
    assert backend.wait_notify_ready(5)
    backend.close()
    assert len(listener_threads()) == before


def test_server_restart_mid_run(serve, storage, connect):
    first = serve(storage)
    port = first.port
    backend = connect(first.url, retries=2)
    notes: queue.Queue[NotifyMessage] = queue.Queue()
    backend.subscribe(notes.put)
    assert backend.wait_notify_ready(5)

    acknowledged = []
    for i in range(20):
        results, _ = backend.execute_ops([create_op("users", f"before-{i}", {"i": i})], META)
        assert results[0].data.results[0].ok
        acknowledged.append(f"before-{i}")
    assert notes.get(timeout=5).resources == ["users"]

    first.stop()
    with pytest.raises(BackendUnavailable) as err:
        backend.execute_ops([create_op("users", "while-down", {})], META)
    assert err.value.retryable

    second = serve(storage, port=port)  # same port, same storage: a restarted process
    assert second.url == first.url
    results, _ = backend.execute_ops([create_op("users", "after", {})], META)
    assert results[0].data.results[0].ok
    acknowledged.append("after")

    # The stream came back by itself and first told us to resync (we may have missed changes).
    resync = notes.get(timeout=10)
    while resync.resources is not None:
        resync = notes.get(timeout=10)
    assert backend.wait_notify_ready(5)
    backend.execute_ops([create_op("users", "notified", {})], META)
    message = notes.get(timeout=5)
    while message.resources != ["users"]:
        message = notes.get(timeout=5)
    acknowledged.append("notified")

    rows, _ = backend.execute_ops([query_op("users"), pull_op(limit=100)], META)
    ids = {row["id"] for row in rows[0].data.data}
    assert set(acknowledged) <= ids
    assert {c.id for c in rows[1].data.changes} == ids
