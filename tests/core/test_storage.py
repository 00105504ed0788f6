"""MemoryStorage: the write-rule matrix, idempotency, changes.pull, queries, notify, threads."""

from __future__ import annotations

import itertools
import threading
from typing import Any

import pytest

from atoma_actors.core.storage import MemoryStorage
from atoma_actors.protocol import (
    ChangeBatch,
    Meta,
    NotifyMessage,
    OperationResultError,
    OperationResultOk,
    OpsRequest,
    ValidationError,
    WriteResultData,
)

_keys = itertools.count()


def _meta(key: str | None) -> dict[str, Any]:
    return {"idempotencyKey": key or f"k{next(_keys)}", "clientTimeMs": 0}


def create(value: dict, id: str | None = None, *, key: str | None = None, **options) -> dict:
    item = {"value": value, "meta": _meta(key)}
    if id is not None:
        item["id"] = id
    return {"action": "create", "item": item, "options": options or None}


def update(id: str, base: int, value: dict, *, key: str | None = None) -> dict:
    item = {"id": id, "baseVersion": base, "value": value, "meta": _meta(key)}
    return {"action": "update", "item": item}


def upsert(
    id: str,
    value: dict,
    *,
    expected: int | None = None,
    conflict: str = "cas",
    apply: str = "merge",
    key: str | None = None,
) -> dict:
    item = {"id": id, "value": value, "meta": _meta(key)}
    if expected is not None:
        item["expectedVersion"] = expected
    return {
        "action": "upsert",
        "item": item,
        "options": {"upsert": {"conflict": conflict, "apply": apply}},
    }


def delete(id: str, base: int, *, key: str | None = None) -> dict:
    return {"action": "delete", "item": {"id": id, "baseVersion": base, "meta": _meta(key)}}


def write_op(resource: str, *entries: dict, op_id: str = "w") -> dict:
    return {"opId": op_id, "kind": "write", "write": {"resource": resource, "entries": entries}}


def pull_op(cursor: str | None = None, op_id: str = "p", **spec) -> dict:
    return {"opId": op_id, "kind": "changes.pull", "pull": {"cursor": cursor, **spec}}


def query_op(resource: str, query: dict, op_id: str = "q") -> dict:
    return {"opId": op_id, "kind": "query", "query": {"resource": resource, "query": query}}


def run(storage: MemoryStorage, *ops: dict) -> list:
    request = OpsRequest.model_validate({"meta": {"v": 1}, "ops": list(ops)})
    results, status = storage.execute_ops(request.ops, request.meta)
    assert status == 200
    assert [r.op_id for r in results] == [op["opId"] for op in ops]
    return results


def write(storage: MemoryStorage, resource: str, *entries: dict) -> list:
    (result,) = run(storage, write_op(resource, *entries))
    assert isinstance(result, OperationResultOk)
    assert isinstance(result.data, WriteResultData)
    assert len(result.data.results) == len(entries)
    assert not result.data.transaction_applied
    return list(result.data.results)


def one(storage: MemoryStorage, resource: str, entry: dict):
    (item,) = write(storage, resource, entry)
    return item


def pull(storage: MemoryStorage, cursor: str | None = None, **spec) -> ChangeBatch:
    (result,) = run(storage, pull_op(cursor, **spec))
    assert isinstance(result, OperationResultOk), result
    assert isinstance(result.data, ChangeBatch)
    return result.data


@pytest.fixture
def storage() -> MemoryStorage:
    ids = (f"gen{i}" for i in itertools.count(1))
    return MemoryStorage(id_factory=lambda: next(ids), clock=lambda: 1_000.0)


# -- write rules -----------------------------------------------------------------------


def test_create_assigns_version_one_and_returns_the_entity(storage):
    item = one(storage, "users", create({"name": "Ada"}, "u1"))
    assert item.ok
    assert (item.id, item.version) == ("u1", 1)
    assert item.data == {"id": "u1", "version": 1, "name": "Ada"}
    assert storage.snapshot("users") == {"u1": {"id": "u1", "version": 1, "name": "Ada"}}


def test_create_without_id_uses_the_id_factory(storage):
    first, second = write(storage, "users", create({"n": 1}), create({"n": 2}))
    assert (first.id, second.id) == ("gen1", "gen2")
    assert storage.get("users", "gen2") == {"id": "gen2", "version": 1, "n": 2}


def test_id_factory_that_repeats_never_overwrites_a_row():
    ids = iter(["dup", "dup", "fresh"])
    storage = MemoryStorage(id_factory=lambda: next(ids))
    a, b = write(storage, "r", create({"n": 1}), create({"n": 2}))
    assert (a.id, b.id) == ("dup", "fresh")
    assert storage.get("r", "dup")["n"] == 1


def test_default_id_factory_gives_distinct_hex_ids():
    storage = MemoryStorage()
    a, b = write(storage, "r", create({}), create({}))
    assert a.id != b.id
    assert len(a.id) == 32
    int(a.id, 16)


def test_create_existing_is_a_conflict_with_the_current_row(storage):
    one(storage, "users", create({"name": "Ada"}, "u1"))
    item = one(storage, "users", create({"name": "Bob"}, "u1"))
    assert not item.ok
    assert item.error.kind == "conflict"
    assert item.error.details["currentVersion"] == 1
    assert item.current.version == 1
    assert item.current.value["name"] == "Ada"
    assert storage.get("users", "u1")["name"] == "Ada"


def test_update_with_current_base_version_bumps_it(storage):
    one(storage, "users", create({"name": "Ada", "age": 3}, "u1"))
    item = one(storage, "users", update("u1", 1, {"name": "Ada", "age": 4}))
    assert (item.ok, item.version) == (True, 2)
    assert storage.get("users", "u1") == {"id": "u1", "version": 2, "name": "Ada", "age": 4}


def test_update_with_stale_base_version_conflicts_and_carries_current(storage):
    one(storage, "users", create({"name": "Ada"}, "u1"))
    one(storage, "users", update("u1", 1, {"name": "Ada 2"}))
    item = one(storage, "users", update("u1", 1, {"name": "stale"}))
    assert not item.ok
    assert item.error.kind == "conflict"
    assert item.error.details == {
        "resource": "users",
        "id": "u1",
        "currentVersion": 2,
        "hint": "rebase",
    }
    assert item.current.version == 2
    assert item.current.value == {"id": "u1", "version": 2, "name": "Ada 2"}
    assert storage.version("users", "u1") == 2


@pytest.mark.parametrize("entry", [update("nope", 1, {"a": 1}), delete("nope", 1)])
def test_update_or_delete_of_a_missing_id_is_not_found(storage, entry):
    item = one(storage, "users", entry)
    assert not item.ok
    assert item.error.kind == "not_found"
    assert storage.snapshot("users") == {}


def test_upsert_cas_creates_a_missing_row(storage):
    item = one(storage, "r", upsert("a", {"x": 1}))
    assert (item.ok, item.version) == (True, 1)


def test_upsert_cas_with_expected_version_on_a_missing_row_is_not_found(storage):
    item = one(storage, "r", upsert("a", {"x": 1}, expected=3))
    assert item.error.kind == "not_found"


def test_upsert_cas_without_expected_version_on_existing_asks_for_a_rebase(storage):
    one(storage, "r", create({"x": 1}, "a"))
    item = one(storage, "r", upsert("a", {"x": 2}))
    assert not item.ok
    assert item.error.kind == "conflict"
    assert item.error.details["hint"] == "rebase"
    assert item.current.version == 1
    assert storage.get("r", "a")["x"] == 1


def test_upsert_cas_with_stale_expected_version_conflicts(storage):
    one(storage, "r", create({"x": 1}, "a"))
    one(storage, "r", upsert("a", {"x": 2}, expected=1))
    item = one(storage, "r", upsert("a", {"x": 3}, expected=1))
    assert item.error.kind == "conflict"
    assert item.error.details["currentVersion"] == 2


@pytest.mark.parametrize(
    ("conflict", "apply", "expected", "result"),
    [
        ("cas", "merge", 1, {"x": 2, "y": 1}),
        ("cas", "replace", 1, {"x": 2}),
        ("lww", "merge", None, {"x": 2, "y": 1}),
        ("lww", "replace", None, {"x": 2}),
        ("lww", "merge", 99, {"x": 2, "y": 1}),  # lww ignores the version it is given
    ],
)
def test_upsert_modes_on_an_existing_row(storage, conflict, apply, expected, result):
    one(storage, "r", create({"x": 1, "y": 1}, "a"))
    item = one(
        storage, "r", upsert("a", {"x": 2}, expected=expected, conflict=conflict, apply=apply)
    )
    assert (item.ok, item.version) == (True, 2)
    assert storage.get("r", "a") == {"id": "a", "version": 2, **result}


def test_delete_and_recreate_keeps_the_version_growing(storage):
    one(storage, "r", create({"x": 1}, "a"))
    one(storage, "r", update("a", 1, {"x": 2}))
    gone = one(storage, "r", delete("a", 2))
    assert (gone.ok, gone.version) == (True, 3)
    assert storage.snapshot("r") == {}
    assert storage.get("r", "a") is None
    assert storage.version("r", "a") == 3
    assert one(storage, "r", update("a", 3, {"x": 9})).error.kind == "not_found"
    again = one(storage, "r", create({"x": 4}, "a"))
    assert (again.ok, again.version) == (True, 4)
    lww = one(storage, "r", delete("a", 4))
    assert lww.version == 5
    assert one(storage, "r", upsert("a", {"x": 5}, conflict="lww")).version == 6


def test_each_entry_gets_exactly_one_result_in_order(storage):
    results = write(
        storage,
        "r",
        create({"n": 0}, "a"),
        create({"n": 1}, "a"),  # conflict with the entry before it
        update("a", 1, {"n": 2}),
        delete("missing", 1),
        update("a", 2, {"n": 3}),
    )
    assert [r.ok for r in results] == [True, False, True, False, True]
    assert [r.version for r in results if r.ok] == [1, 2, 3]
    assert storage.get("r", "a")["n"] == 3


def test_returning_false_and_select_trim_the_result_data(storage):
    plain, trimmed = write(
        storage,
        "r",
        create({"a": 1, "b": 2}, "x", returning=False),
        create({"a": 1, "b": 2}, "y", select=["a"]),
    )
    assert plain.data is None
    assert trimmed.data == {"id": "y", "version": 1, "a": 1}


def test_results_inputs_and_snapshots_are_copies(storage):
    value = {"tags": ["a"], "nested": {"k": 1}}
    request = OpsRequest.model_validate(
        {"meta": {"v": 1}, "ops": [write_op("r", create(value, "x"))]}
    )
    results, _ = storage.execute_ops(request.ops, request.meta)
    request.ops[0].write.entries[0].item.value["tags"].append("from-input")
    results[0].data.results[0].data["nested"]["k"] = "from-result"
    snap = storage.snapshot("r")
    snap["x"]["tags"].append("from-snapshot")
    storage.get("r", "x")["nested"]["k"] = "from-get"
    assert storage.get("r", "x") == {"id": "x", "version": 1, "tags": ["a"], "nested": {"k": 1}}


# -- idempotency -----------------------------------------------------------------------


def test_a_repeated_idempotency_key_is_applied_once(storage):
    first = one(storage, "r", upsert("a", {"n": 1}, conflict="lww", key="same"))
    again = one(storage, "r", upsert("a", {"n": 2}, conflict="lww", key="same"))
    assert again == first
    assert storage.get("r", "a") == {"id": "a", "version": 1, "n": 1}
    assert len(pull(storage).changes) == 1


def test_a_retried_idless_create_returns_the_same_id(storage):
    first = one(storage, "r", create({"n": 1}, key="c1"))
    again = one(storage, "r", create({"n": 1}, key="c1"))
    assert again.id == first.id
    assert list(storage.snapshot("r")) == [first.id]


def test_a_replayed_result_is_a_copy(storage):
    first = one(storage, "r", create({"nested": {"k": 1}}, "a", key="k"))
    first.data["nested"]["k"] = 2
    again = one(storage, "r", create({"nested": {"k": 1}}, "a", key="k"))
    again.data["nested"]["k"] = 3
    assert one(storage, "r", create({}, "a", key="k")).data["nested"] == {"k": 1}


def test_idempotency_keys_are_scoped_per_resource(storage):
    one(storage, "r1", create({}, "a", key="k"))
    item = one(storage, "r2", create({}, "a", key="k"))
    assert item.ok
    assert storage.get("r2", "a") is not None


def test_a_refused_write_does_not_consume_its_key(storage):
    one(storage, "r", create({"n": 1}, "a"))
    assert not one(storage, "r", create({"n": 2}, "a", key="k")).ok
    one(storage, "r", delete("a", 1))
    item = one(storage, "r", create({"n": 2}, "a", key="k"))
    assert (item.ok, item.version) == (True, 3)


def test_idempotency_keys_are_bounded_oldest_first():
    storage = MemoryStorage(idempotency_limit=2)
    for key in ("k1", "k2", "k3"):
        one(storage, "r", upsert("a", {"k": key}, conflict="lww", key=key))
    assert storage.idempotency_keys == 2
    assert one(storage, "r", upsert("a", {}, conflict="lww", key="k3")).version == 3  # kept
    assert one(storage, "r", upsert("a", {}, conflict="lww", key="k1")).version == 4  # evicted


def test_idempotency_keys_expire_after_their_ttl():
    now = [0.0]
    storage = MemoryStorage(clock=lambda: now[0], idempotency_ttl=60)
    one(storage, "r", upsert("a", {}, conflict="lww", key="k"))
    now[0] = 59.0
    assert one(storage, "r", upsert("a", {}, conflict="lww", key="k")).version == 1
    now[0] = 61.0
    assert one(storage, "r", upsert("a", {}, conflict="lww", key="k")).version == 2


def test_idempotency_can_be_switched_off():
    storage = MemoryStorage(idempotency_limit=0)
    one(storage, "r", upsert("a", {}, conflict="lww", key="k"))
    assert one(storage, "r", upsert("a", {}, conflict="lww", key="k")).version == 2
    with pytest.raises(ValidationError, match="idempotency_limit"):
        MemoryStorage(idempotency_limit=-1)
    with pytest.raises(ValidationError, match="idempotency_ttl"):
        MemoryStorage(idempotency_ttl=0)


# -- changes.pull ----------------------------------------------------------------------


def test_pull_pages_through_the_change_log_with_cursors(storage):
    write(storage, "r", *(create({"n": i}, f"id{i}") for i in range(5)))
    page1 = pull(storage, limit=2)
    assert [c.id for c in page1.changes] == ["id0", "id1"]
    page2 = pull(storage, page1.next_cursor, limit=2)
    assert [c.id for c in page2.changes] == ["id2", "id3"]
    page3 = pull(storage, page2.next_cursor, limit=2)
    assert [c.id for c in page3.changes] == ["id4"]
    empty = pull(storage, page3.next_cursor, limit=2)
    assert (empty.changes, empty.next_cursor) == ([], page3.next_cursor)
    one(storage, "r", update("id1", 1, {"n": 10}))
    later = pull(storage, empty.next_cursor)
    assert [(c.id, c.kind, c.version) for c in later.changes] == [("id1", "upsert", 2)]


def test_pull_reports_the_latest_change_per_id_with_kind_and_time(storage):
    one(storage, "r", create({}, "a"))
    one(storage, "r", create({}, "b"))
    one(storage, "r", update("a", 1, {}))
    one(storage, "r", delete("b", 1))
    batch = pull(storage)
    assert [(c.resource, c.id, c.kind, c.version) for c in batch.changes] == [
        ("r", "a", "upsert", 2),
        ("r", "b", "delete", 2),
    ]
    assert all(c.changed_at_ms == 1_000_000 for c in batch.changes)
    assert batch.next_cursor == storage.cursor == "4"


def test_pull_filters_by_resource_and_still_advances(storage):
    one(storage, "a", create({}, "1"))
    one(storage, "b", create({}, "2"))
    one(storage, "a", create({}, "3"))
    batch = pull(storage, resources=["b"])
    assert [c.id for c in batch.changes] == ["2"]
    assert batch.next_cursor == storage.cursor
    page = pull(storage, resources=["a"], limit=1)
    assert [c.id for c in page.changes] == ["1"]
    assert [c.id for c in pull(storage, page.next_cursor, resources=["a"]).changes] == ["3"]


def test_failed_writes_and_replays_leave_no_change(storage):
    one(storage, "r", create({}, "a", key="k"))
    one(storage, "r", create({}, "a", key="k"))
    one(storage, "r", create({}, "a"))
    one(storage, "r", update("a", 7, {}))
    assert storage.cursor == "1"


def test_the_change_log_holds_one_change_per_entity_however_many_writes():
    storage = MemoryStorage(clock=lambda: 1_000.0)
    one(storage, "r", create({"n": 0}, "a"))
    for version in range(1, 50):
        one(storage, "r", update("a", version, {"n": version}))
    one(storage, "r", create({}, "b"))
    batch = pull(storage)
    assert [(c.id, c.version) for c in batch.changes] == [("a", 50), ("b", 1)]
    assert storage.change_log_size == 2


def test_a_trimmed_change_log_refuses_a_cursor_older_than_what_it_kept():
    storage = MemoryStorage(clock=lambda: 1_000.0, change_log_limit=3)
    for i in range(3):
        one(storage, "r", create({}, f"e{i}"))
    early = pull(storage, limit=1).next_cursor  # has read e0 only
    for i in range(3, 6):
        one(storage, "r", create({}, f"e{i}"))
    assert storage.change_log_size == 3
    for cursor in (early, None):  # a fresh reader is as far behind as can be
        (result,) = run(storage, pull_op(cursor))
        assert isinstance(result, OperationResultError)
        assert result.error.code == "INVALID_CURSOR"
        assert result.error.details == {"hint": "resync", "oldestCursor": "3"}
    # a reader that kept up (cursor at the trim point or later) goes on as before
    batch = pull(storage, "3")
    assert [c.id for c in batch.changes] == ["e3", "e4", "e5"]
    # an update moves an entity to the head: still one change per entity, nothing lost
    one(storage, "r", update("e4", 1, {"n": 1}))
    assert [(c.id, c.version) for c in pull(storage, batch.next_cursor).changes] == [("e4", 2)]
    with pytest.raises(ValidationError, match="change_log_limit"):
        MemoryStorage(change_log_limit=0)


def test_idempotency_records_expire_after_a_day_by_default():
    now = [0.0]
    storage = MemoryStorage(clock=lambda: now[0])
    one(storage, "r", upsert("a", {}, conflict="lww", key="k"))
    now[0] = 86_000.0
    replay = one(storage, "r", upsert("a", {}, conflict="lww", key="k"))
    assert (replay.version, replay.data) == (1, {"id": "a", "version": 1})  # the stored result
    now[0] = 86_401.0
    assert one(storage, "r", upsert("a", {}, conflict="lww", key="k")).version == 2


@pytest.mark.parametrize("cursor", ["garbage", "-1", "1.5", "٣", "999"])
def test_a_bad_cursor_fails_that_op_alone(storage, cursor):
    results = run(
        storage,
        pull_op(cursor, op_id="bad"),
        write_op("r", create({}, "a"), op_id="w"),
        pull_op("0", op_id="good"),
    )
    bad, wrote, good = results
    assert isinstance(bad, OperationResultError)
    assert bad.error.kind == "validation"
    assert wrote.ok
    assert [c.id for c in good.data.changes] == ["a"]


# -- queries ---------------------------------------------------------------------------


def test_query_evaluates_over_live_rows_and_returns_copies(storage):
    write(
        storage,
        "r",
        create({"n": 1}, "a"),
        create({"n": 2}, "b"),
        create({"n": 3}, "c"),
    )
    one(storage, "r", delete("c", 1))
    (result,) = run(storage, query_op("r", {"sort": [{"field": "n", "dir": "desc"}]}))
    assert result.ok, result
    assert [e["id"] for e in result.data.data] == ["b", "a"]
    result.data.data[0]["n"] = "mutated"
    assert storage.get("r", "b")["n"] == 2
    (filtered,) = run(storage, query_op("r", {"filter": {"op": "eq", "field": "n", "value": 1}}))
    assert [e["id"] for e in filtered.data.data] == ["a"]
    (unknown,) = run(storage, query_op("nothing-here", {}))
    assert unknown.ok
    assert unknown.data.data == []


def test_an_invalid_query_fails_that_op_alone(storage):
    one(storage, "r", create({"n": 1}, "a"))
    bad, wrote, good = run(
        storage,
        query_op("r", {"filter": {"op": "nope", "field": "n"}}, op_id="bad"),
        write_op("r", create({"n": 2}, "b"), op_id="w"),
        query_op("r", {}, op_id="good"),
    )
    assert isinstance(bad, OperationResultError)
    assert bad.error.kind == "validation"
    assert wrote.ok
    assert wrote.data.results[0].ok
    assert sorted(e["id"] for e in good.data.data) == ["a", "b"]


# -- notify ----------------------------------------------------------------------------


def test_listeners_hear_about_writes_only(storage):
    heard: list[NotifyMessage] = []
    unsubscribe = storage.subscribe(heard.append)
    run(storage, write_op("a", create({}, "1"), op_id="1"), write_op("b", create({}, "2")))
    assert [m.resources for m in heard] == [["a", "b"]]
    one(storage, "a", create({}, "1"))  # a conflict writes nothing
    pull(storage)
    assert len(heard) == 1
    unsubscribe()
    unsubscribe()
    one(storage, "a", create({}, "3"))
    assert len(heard) == 1


def test_a_failing_listener_does_not_fail_the_write(storage, caplog):
    def broken(_: NotifyMessage) -> None:
        raise RuntimeError("listener bug")

    heard: list[NotifyMessage] = []
    storage.subscribe(broken)
    storage.subscribe(heard.append)
    assert one(storage, "r", create({}, "a")).ok
    assert len(heard) == 1
    assert "listener" in caplog.text


def test_listeners_may_call_back_into_the_storage(storage):
    seen: list[dict] = []
    storage.subscribe(lambda m: seen.append(storage.snapshot(m.resources[0])))
    one(storage, "r", create({}, "a"))
    assert list(seen[0]) == ["a"]


# -- threads ---------------------------------------------------------------------------


def test_eight_threads_hammering_overlapping_ids_keep_versions_consistent(busy_switching):
    storage = MemoryStorage()
    ids = [f"e{i}" for i in range(5)]
    per_thread = 150
    applied = [0] * 8
    start = threading.Barrier(8)
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            start.wait(timeout=10)
            for i in range(per_thread):
                id_ = ids[(n + i) % len(ids)]
                if i % 2:
                    entry = upsert(id_, {f"t{n}": i}, conflict="lww")
                    item = one(storage, "r", entry)
                    assert item.ok
                    applied[n] += 1
                    continue
                # CAS read-modify-write: retry on conflict with the current version.
                current = storage.version("r", id_) or 0
                while True:
                    entry = upsert(id_, {"n": i}, expected=current)
                    item = one(storage, "r", entry)
                    if item.ok:
                        applied[n] += 1
                        break
                    assert item.error.kind in {"conflict", "not_found"}
                    current = storage.version("r", id_) or 0
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
        assert not t.is_alive()
    assert errors == []
    snapshot = storage.snapshot("r")
    assert sum(e["version"] for e in snapshot.values()) == sum(applied) == 8 * per_thread
    changes = pull(storage, limit=10_000).changes
    assert {c.id: c.version for c in changes} == {i: e["version"] for i, e in snapshot.items()}
    assert int(storage.cursor) == 8 * per_thread


def test_meta_is_accepted_and_unused_fields_do_not_matter(storage):
    results, status = storage.execute_ops([], Meta(trace_id="t"), deadline=0.0, context={"x": 1})
    assert (results, status) == ([], 200)


def test_query_pages_carry_page_info_through(storage):
    write(storage, "r", *(create({"n": i}, f"id{i}") for i in range(5)))
    page = {"mode": "offset", "limit": 2, "offset": 1, "includeTotal": True}
    (result,) = run(storage, query_op("r", {"page": page}))
    assert [e["id"] for e in result.data.data] == ["id1", "id2"]
    assert (result.data.page_info.has_next, result.data.page_info.total) == (True, 5)
    (first,) = run(storage, query_op("r", {"page": {"mode": "cursor", "limit": 3}}))
    after = first.data.page_info.cursor
    assert after
    (second,) = run(
        storage, query_op("r", {"page": {"mode": "cursor", "limit": 3, "after": after}})
    )
    assert [e["id"] for e in second.data.data] == ["id3", "id4"]
    assert second.data.page_info.has_next is False
    (bad,) = run(storage, query_op("r", {"page": {"mode": "cursor", "after": "!!nope"}}))
    assert bad.error.kind == "validation"
