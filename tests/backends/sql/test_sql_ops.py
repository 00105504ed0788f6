"""Idempotency (also across a restart, with a TTL), `changes.pull`, bad input refused with
nothing written, notify, threads, and the `Backend` the SQL backend hands out."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa
from sql_support import (
    create,
    delete,
    items,
    pull_op,
    query_op,
    raw_count,
    rows,
    run,
    run1,
    update,
    upsert,
    write_op,
)

from atoma_actors.protocol import Backend, Meta, NotifyMessage, OpsClient

WAIT = 10.0


# --- idempotency -------------------------------------------------------------------------


def test_repeated_key_returns_stored_result_without_writing(backend):
    first = items(backend, "t", create("a", {"v": 1}, k="once"))
    before = raw_count(backend)
    again = items(backend, "t", create("a", {"v": 2}, k="once"))
    assert again == first
    assert raw_count(backend) == before
    assert rows(backend, "t") == [{"v": 1, "id": "a", "version": 1}]
    # The same key twice in one op: the second is answered from the first.
    twice = items(backend, "t", update("a", 1, {"v": 3}, k="u"), update("a", 1, {"v": 4}, k="u"))
    assert twice[0] == twice[1]
    assert twice[0]["version"] == 2


def test_refused_writes_are_not_remembered(backend):
    items(backend, "t", create("a", {}))
    assert items(backend, "t", update("a", 9, {}, k="retry"))[0]["ok"] is False
    assert items(backend, "t", update("a", 1, {"x": 1}, k="retry"))[0]["ok"] is True


def test_idempotency_survives_restart(make_backend):
    b1 = make_backend()
    first = items(b1, "t", create("a", {"v": 1}, k="k-restart"), delete("zz", 1, k="k-miss"))
    b1.close()
    b2 = make_backend()
    assert items(b2, "t", create("a", {"v": 9}, k="k-restart"))[0] == first[0]
    assert rows(b2, "t") == [{"v": 1, "id": "a", "version": 1}]


def test_idempotency_ttl(make_backend):
    now = [1_000.0]
    b = make_backend(idempotency_ttl_s=60, clock=lambda: now[0])
    items(b, "t", upsert("a", {"v": 1}, conflict="lww", k="ttl"))
    now[0] += 30
    assert items(b, "t", upsert("a", {"v": 2}, conflict="lww", k="ttl"))[0]["version"] == 1
    now[0] += 31
    assert items(b, "t", upsert("a", {"v": 3}, conflict="lww", k="ttl"))[0]["version"] == 2
    b._purge_expired()
    assert raw_count(b)[2] == 1  # only the fresh record is left


# --- changes.pull ------------------------------------------------------------------------


def test_changes_pull(make_backend):
    now = [5.0]
    b = make_backend(clock=lambda: now[0])
    items(b, "a", create("x", {}), create("y", {}))
    items(b, "b", create("z", {}))
    items(b, "a", update("x", 1, {"n": 1}), delete("y", 1))
    res = run1(b, pull_op())
    assert res["ok"]
    batch = res["data"]
    # Latest change per row, in commit order.
    assert [(c["resource"], c["id"], c["kind"], c["version"]) for c in batch["changes"]] == [
        ("b", "z", "upsert", 1),
        ("a", "x", "upsert", 2),
        ("a", "y", "delete", 2),
    ]
    assert {c["changedAtMs"] for c in batch["changes"]} == {5000}
    head = batch["nextCursor"]
    assert run1(b, pull_op(head))["data"] == {"nextCursor": head, "changes": []}
    items(b, "b", update("z", 1, {}))
    later = run1(b, pull_op(head))["data"]
    assert [(c["id"], c["version"]) for c in later["changes"]] == [("z", 2)]

    page1 = run1(b, pull_op(limit=2))["data"]
    page2 = run1(b, pull_op(page1["nextCursor"], limit=2))["data"]
    assert len(page1["changes"]) == 2
    assert [c["id"] for c in page1["changes"] + page2["changes"]] == ["x", "y", "z"]
    only_a = run1(b, pull_op(resources=["a"]))["data"]
    assert {c["resource"] for c in only_a["changes"]} == {"a"}
    assert only_a["nextCursor"] == later["nextCursor"]


def test_changes_pull_bad_cursor(backend):
    for cursor in ("abc", "-1", "99999"):
        res = run1(backend, pull_op(cursor))
        assert res["ok"] is False
        assert res["error"]["kind"] == "validation"


# --- bad input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "op",
    [
        write_op('x"; drop table atoma_rows --', create("a", {})),
        write_op("x'); DELETE FROM atoma_rows; --", create("a", {})),
        write_op("a" * 65, create("a", {})),
        write_op("t", create("a", {}), create("b", {"nan": float("nan")})),
        write_op("t", create("a", {}), create("i" * 600, {})),
        write_op(
            "t",
            create("a", {}),
            create(
                "deep",
                {"d": __import__("functools").reduce(lambda acc, _: {"x": acc}, range(80), {})},
            ),
        ),
        query_op('x"; drop table atoma_rows --'),
        pull_op(resources=["ok", "bad name;"]),
    ],
)
def test_bad_input_is_refused_and_nothing_written(backend, op):
    items(backend, "t", create("keep", {"v": 1}))
    before = raw_count(backend)
    res = run(backend, op)[0]
    assert res["ok"] is False
    assert res["error"]["kind"] == "validation"
    assert raw_count(backend) == before
    assert rows(backend, "t") == [{"v": 1, "id": "keep", "version": 1}]


def test_huge_value_is_a_limits_error(make_backend):
    from atoma_backend_sql import Limits

    b = make_backend(limits=Limits(max_value_bytes=10_000))
    res = run1(b, write_op("t", create("ok", {}), create("big", {"blob": "x" * 20_000})))
    assert res["error"]["kind"] == "limits"
    assert rows(b, "t") == []


def test_non_json_values_and_raw_dict_ops(backend):
    from atoma_actors.protocol import CreateEntry, CreateItem, ItemMeta, WriteOp, WriteSpec

    bad = WriteOp(
        op_id="w",
        write=WriteSpec(
            resource="t",
            entries=[
                CreateEntry(
                    item=CreateItem(
                        id="a",
                        value={"when": {1, 2}},
                        meta=ItemMeta(idempotency_key="k", client_time_ms=0),
                    )
                )
            ],
        ),
    )
    nested_key = WriteOp(
        op_id="w2",
        write=WriteSpec(
            resource="t",
            entries=[
                CreateEntry(
                    item=CreateItem(
                        id="b",
                        value={"m": {1: "x"}},
                        meta=ItemMeta(idempotency_key="k2", client_time_ms=0),
                    )
                )
            ],
        ),
    )
    wrong_shape = {
        "opId": "w3",
        "kind": "write",
        "write": {
            "resource": "t",
            "entries": [
                {"action": "update", "item": {"id": "a", "baseVersion": "two", "value": {}}}
            ],
        },
    }
    results, status = backend.execute_ops([bad, nested_key, wrong_shape], Meta())
    assert status == 200
    assert [r.error.kind for r in results] == ["validation"] * 3
    assert results[2].op_id == "w3"
    assert rows(backend, "t") == []


# --- notify, threads, lifecycle ----------------------------------------------------------


def test_notify_after_commit_and_unsubscribe(backend):
    got: list[NotifyMessage] = []
    seen = threading.Event()

    def listener(msg: NotifyMessage) -> None:
        got.append(msg)
        seen.set()

    unsubscribe = backend.subscribe(listener)
    backend.execute_ops([_op(write_op("t", create("a", {})))], Meta(trace_id="tr"))
    assert seen.wait(WAIT)
    assert got == [NotifyMessage(resources=["t"], trace_id="tr")]
    items(backend, "t", update("a", 9, {}))  # refused: nothing changed, nobody told
    unsubscribe()
    items(backend, "t", update("a", 1, {}))
    assert len(got) == 1


def _op(raw: dict):
    from atoma_actors.protocol import OpsRequest

    return OpsRequest.model_validate({"meta": {}, "ops": [raw]}).ops[0]


def test_concurrent_writers(backend):
    def worker(n: int) -> list[bool]:
        out = []
        for i in range(20):
            out += [r["ok"] for r in items(backend, "t", create(f"w{n}-{i}", {"n": n}))]
            out += [
                r["ok"] for r in items(backend, "c", upsert("shared", {f"w{n}": i}, conflict="lww"))
            ]
        return out

    with ThreadPoolExecutor(4) as pool:
        oks = [ok for res in pool.map(worker, range(4)) for ok in res]
    assert all(oks)
    assert len(rows(backend, "t")) == 80
    shared = rows(backend, "c")[0]
    assert shared["version"] == 80  # every lww upsert applied once, none lost
    assert shared == {"w0": 19, "w1": 19, "w2": 19, "w3": 19, "id": "shared", "version": 80}
    seqs = list(run1(backend, pull_op(limit=1000))["data"]["changes"])
    assert len(seqs) == 81


def test_backend_object_and_close(make_backend, tmp_path):
    b = make_backend(key="db")
    be = b.backend
    assert isinstance(be, Backend)
    assert isinstance(be.store.ops_client, OpsClient)
    assert be.key == "db"
    assert be.notify is b
    expected = "remote" if b.dialect == "postgresql" else "durable"
    assert be.capabilities.store_persistence == expected
    assert (
        make_backend(persistence="ephemeral").backend.capabilities.store_persistence == "ephemeral"
    )
    be.dispose()
    res = run1(b, query_op("t"))
    assert res["error"]["code"] == "BACKEND_CLOSED"


def test_memory_sqlite_and_deadline():
    from atoma_backend_sql import SqlBackend

    with SqlBackend("sqlite://") as b:
        assert b.backend.capabilities.store_persistence == "ephemeral"
        items(b, "t", create("a", {}))
        # One shared connection: another thread sees the same in-memory database.
        with ThreadPoolExecutor(1) as pool:
            assert pool.submit(rows, b, "t").result(WAIT) == [{"id": "a", "version": 1}]
        results, _ = b.execute_ops([_op(query_op("t"))], Meta(), deadline=time.monotonic() - 1)
        assert results[0].error.code == "DEADLINE_EXCEEDED"
        assert results[0].error.retryable is True


def test_sqlite_pragmas(tmp_path):
    from atoma_backend_sql import SqlBackend

    with SqlBackend(f"sqlite:///{tmp_path / 'p.db'}") as b, b.engine.connect() as conn:
        assert conn.execute(sa.text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(sa.text("PRAGMA synchronous")).scalar() == 2  # FULL
        assert conn.execute(sa.text("PRAGMA busy_timeout")).scalar() == 10000


def test_memory_sqlite_concurrent_ops_stay_whole():
    """In memory every thread shares one connection: writes and reads from several threads
    must not interleave their transactions on it (a write half-applied, with its change-log
    and idempotency rows but without its row)."""
    from atoma_backend_sql import SqlBackend

    with SqlBackend("sqlite://") as b:
        stop = threading.Event()
        failures: list[dict] = []

        def writer(w: int) -> None:
            for i in range(40):
                res = run1(b, write_op("t", *[create(f"{w}-{i}-{j}", {"x": j}) for j in range(10)]))
                if not (res["ok"] and all(r["ok"] for r in res["data"]["results"])):
                    failures.append(res)

        def reader() -> None:
            while not stop.is_set():
                res = run1(b, query_op("t", {"filter": {"op": "eq", "field": "x", "value": 3}}))
                if not res["ok"]:
                    failures.append(res)

        with ThreadPoolExecutor(6) as pool:
            readers = [pool.submit(reader) for _ in range(3)]
            for f in [pool.submit(writer, w) for w in range(3)]:
                f.result(60)
            stop.set()
            for f in readers:
                f.result(WAIT)
        assert failures == []
        assert raw_count(b) == (1200, 1200, 1200)  # rows, changes, idempotency records


def test_raw_meta_is_checked_as_wire_input(backend):
    """A meta given as a mapping is outside input: a good one carries its trace id to notify,
    a bad one is the typed ValidationError (it used to escape as pydantic's own error)."""
    got: list[NotifyMessage] = []
    backend.subscribe(got.append)
    results, status = backend.execute_ops(
        [_op(write_op("t", create("a", {})))], {"v": 1, "traceId": "tr"}
    )
    assert status == 200 and results[0].to_wire()["ok"]
    assert got == [NotifyMessage(resources=["t"], trace_id="tr")]

    from atoma_actors.protocol.errors import ValidationError

    with pytest.raises(ValidationError) as caught:
        backend.execute_ops([_op(write_op("t", create("b", {})))], {"v": 1, "traceId": 5})
    assert caught.value.error.kind == "validation"
    assert [r["id"] for r in rows(backend, "t")] == ["a"]
