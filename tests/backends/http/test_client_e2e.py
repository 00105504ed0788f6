"""The whole path: `create_client(backend=HttpBackend(url).backend)` → HTTP → atoma-server →
SqlBackend on a SQLite file. CRUD and queries in both codecs and both strategies, many
threads, and a server restart mid-run where the supervisor opens the circuit, local reads keep
working, and after recovery no acknowledged write is lost."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from http_ops import META, query_op

from atoma_actors import BackendUnavailable, ConflictError, NotFoundError, create_client
from atoma_actors.runtime.supervisor import SupervisorPolicy
from atoma_actors.testing import EventRecorder

atoma_backend_sql = pytest.importorskip("atoma_backend_sql")


@pytest.fixture
def sql(tmp_path) -> Iterator[object]:
    backend = atoma_backend_sql.SqlBackend(f"sqlite:///{tmp_path / 'e2e.db'}", synchronous="NORMAL")
    yield backend
    backend.close()


def server_rows(url, connect, resource="users"):
    results, _ = connect(url).execute_ops([query_op(resource)], META)
    return {row["id"]: row for row in results[0].data.data}


@pytest.mark.parametrize(("fmt", "strategy"), [("json", "direct"), ("msgpack", "queue")])
def test_crud_and_queries_through_http(serve, sql, connect, fmt, strategy):
    url = serve(sql).url
    http = connect(url, format=fmt)
    with create_client(http.backend, strategy=strategy, timeout=10) as client:
        users = client.store("users")
        ada = users.create({"id": "u1", "name": "Ada", "age": 36})
        assert ada["version"] == 1
        users.create_many([{"id": f"b{i}", "name": f"Bob {i}", "age": 20 + i} for i in range(5)])
        assert users.update("u1", {"age": 37})["version"] == 2
        with pytest.raises(ConflictError):
            users.create({"id": "u1", "name": "again"})
        with pytest.raises(NotFoundError):
            users.update("ghost", {"x": 1})
        users.delete("b0")
        client.flush()

        found = users.query(
            {
                "filter": {"op": "gte", "field": "age", "value": 23},
                "sort": [{"field": "age", "dir": "desc"}],
            }
        )
        assert [e["id"] for e in found.data] == ["u1", "b4", "b3"]
        assert users.get("u1", force=True)["age"] == 37
        assert users.get("b0", force=True) is None

    rows = server_rows(url, connect)
    assert sorted(rows) == ["b1", "b2", "b3", "b4", "u1"]
    assert rows["u1"]["version"] == 2 and rows["u1"]["age"] == 37


def test_many_threads_share_one_client_and_one_pool(serve, sql, connect):
    url = serve(sql).url
    http = connect(url, max_connections=4)
    with create_client(http.backend, strategy="queue", timeout=20) as client:
        users = client.store("users")

        def work(t):
            for i in range(25):
                users.create({"id": f"t{t}-{i}", "t": t})
            return t

        with ThreadPoolExecutor(8) as pool:
            assert sorted(pool.map(work, range(8))) == list(range(8))
        client.flush()
    assert len(server_rows(url, connect)) == 200
    assert http.requests_sent < 200  # the queue batched entries from many threads


def test_restart_opens_the_circuit_and_loses_no_acknowledged_write(serve, sql, connect):
    first = serve(sql)
    http = connect(first.url, retries=0)  # the supervisor, not the transport, rides this out
    # Real time: the runtime hands the backend deadlines on the client's clock, and an HTTP
    # call needs real ones. Short backoffs keep it quick; events, not sleeps, pace the test.
    policy = SupervisorPolicy(
        backoff_base=0.05, backoff_max=0.05, max_failures=3, window=100.0, circuit_reset=0.3
    )
    with create_client(http.backend, supervisor=policy, timeout=10) as client:
        events = EventRecorder(
            client, ["backend_failed", "circuit_opened", "circuit_half_open", "circuit_closed"]
        )
        users = client.store("users")
        acknowledged = {users.create({"id": f"a{i}", "n": i})["id"] for i in range(10)}

        first.stop()
        failures = 0
        while not events.counts["circuit_opened"]:
            with pytest.raises(BackendUnavailable):
                users.update("a0", {"n": 100 + failures})
            failures += 1
            events.wait("backend_failed", failures)
            assert failures <= 50  # bounded: calls during a restart backoff fail fast
        # Fail fast while open; local reads still answer and the failed writes rolled back.
        with pytest.raises(BackendUnavailable, match="circuit"):
            users.update("a0", {"n": -1})
        assert users.peek("a0")["n"] == 0
        local = users.query({"filter": {"op": "lt", "field": "n", "value": 3}})
        assert local.source == "local" and sorted(e["id"] for e in local.data) == ["a0", "a1", "a2"]

        second = serve(sql, port=first.port)
        events.wait("circuit_half_open")
        assert users.update("a0", {"n": 42})["n"] == 42  # the probe closes the circuit
        events.wait("circuit_closed")
        acknowledged |= {users.create({"id": f"b{i}"})["id"] for i in range(5)}

    rows = server_rows(second.url, connect)
    assert acknowledged <= set(rows)
    assert rows["a0"]["n"] == 42 and rows["a0"]["version"] == 2
