"""The write rules through SQL (both databases): versions, CAS, conflicts, tombstones,
per-item results aligned by index, one transaction per op, and the memory engine as oracle."""

from __future__ import annotations

import itertools
from typing import Any

import hypothesis.strategies as st
from hypothesis import HealthCheck, given, settings
from sql_support import (
    create,
    delete,
    items,
    raw_count,
    rows,
    run,
    update,
    upsert,
    write_op,
)

from atoma_actors.core.storage import MemoryStorage


def test_create_update_delete_recreate_versions(backend):
    assert items(backend, "users", create("u1", {"name": "Ada"}))[0] == {
        "ok": True,
        "id": "u1",
        "version": 1,
        "data": {"name": "Ada", "id": "u1", "version": 1},
    }
    r = items(backend, "users", update("u1", 1, {"name": "Bea"}))[0]
    assert (r["ok"], r["version"], r["data"]["name"]) == (True, 2, "Bea")
    assert items(backend, "users", delete("u1", 2))[0] == {"ok": True, "id": "u1", "version": 3}
    assert rows(backend, "users") == []
    # The tombstone keeps the version growing across delete and re-create.
    assert items(backend, "users", create("u1", {"name": "Cy"}))[0]["version"] == 4
    assert rows(backend, "users") == [{"name": "Cy", "id": "u1", "version": 4}]


def test_conflicts_and_not_found_carry_details(backend):
    items(backend, "users", create("u1", {"n": 1}))
    dup, stale, missing, gone = items(
        backend,
        "users",
        create("u1", {"n": 2}),
        update("u1", 7, {"n": 3}),
        update("nope", 1, {}),
        delete("nope", 1),
    )
    assert dup["error"]["kind"] == "conflict"
    assert dup["error"]["details"] == {
        "resource": "users",
        "id": "u1",
        "currentVersion": 1,
        "hint": "server-wins",
    }
    assert dup["current"] == {"value": {"n": 1, "id": "u1", "version": 1}, "version": 1}
    assert stale["error"]["kind"] == "conflict"
    assert stale["current"]["version"] == 1
    assert missing["error"]["kind"] == "not_found"
    assert gone["error"]["kind"] == "not_found"


def test_upsert_modes(backend):
    r = items(backend, "t", upsert("a", {"x": 1, "y": 1}))[0]
    assert r["version"] == 1
    cas_no_version = items(backend, "t", upsert("a", {"x": 2}))[0]
    assert cas_no_version["error"]["details"]["hint"] == "rebase"
    assert items(backend, "t", upsert("a", {"x": 2}, 5))[0]["error"]["kind"] == "conflict"
    merged = items(backend, "t", upsert("a", {"x": 2}, 1))[0]
    assert merged["data"] == {"x": 2, "y": 1, "id": "a", "version": 2}
    replaced = items(backend, "t", upsert("a", {"z": 3}, conflict="lww", apply="replace"))[0]
    assert replaced["data"] == {"z": 3, "id": "a", "version": 3}
    assert items(backend, "t", upsert("new", {}, 4))[0]["error"]["kind"] == "not_found"


def test_batch_results_align_and_failures_do_not_abort_others(backend):
    out = items(
        backend,
        "t",
        create("a", {}),
        create("a", {}),
        create("b", {}),
        update("a", 1, {"v": 1}),
        delete("zz", 1),
        update("b", 1, {"v": 2}),
    )
    assert [r["ok"] for r in out] == [True, False, True, True, False, True]
    assert [r.get("version") for r in out] == [1, None, 1, 2, None, 2]
    res = run(backend, write_op("t", create("c", {})))[0]
    assert res["data"]["transactionApplied"] is True
    assert sorted(r["id"] for r in rows(backend, "t")) == ["a", "b", "c"]


def test_create_without_id_and_returning_options(backend):
    r = items(backend, "t", create(None, {"v": 1}))[0]
    assert r["ok"]
    assert len(r["id"]) >= 16
    assert r["version"] == 1
    quiet = items(backend, "t", create("q", {"v": 1}, returning=False))[0]
    assert "data" not in quiet
    sel = items(backend, "t", create("s", {"v": 1, "w": 2}, select=["w"]))[0]
    assert sel["data"] == {"w": 2, "id": "s", "version": 1}


def test_resources_are_separate(backend):
    items(backend, "a", create("x", {"r": "a"}))
    items(backend, "b", create("x", {"r": "b"}))
    assert rows(backend, "a") == [{"r": "a", "id": "x", "version": 1}]
    assert rows(backend, "b") == [{"r": "b", "id": "x", "version": 1}]


def test_reopen_keeps_data(make_backend):
    first = make_backend()
    items(first, "t", create("a", {"v": 1}), create("b", {"v": 2}))
    items(first, "t", delete("b", 1))
    first.close()
    again = make_backend()
    assert rows(again, "t") == [{"v": 1, "id": "a", "version": 1}]
    assert items(again, "t", create("b", {}))[0]["version"] == 3
    assert raw_count(again)[0] == 2


# --- the memory engine as oracle --------------------------------------------------------

_ids = st.sampled_from(["a", "b", "c"])
_vals = st.fixed_dictionaries(
    {}, optional={"n": st.integers(0, 3), "s": st.sampled_from(["x", "y"])}
)
_version = st.integers(0, 4)
_entry = st.one_of(
    st.builds(create, _ids, _vals),
    st.builds(update, _ids, _version, _vals),
    st.builds(
        lambda i, v, e, c, a: upsert(i, v, e, conflict=c, apply=a),
        _ids,
        _vals,
        st.none() | _version,
        st.sampled_from(["cas", "lww"]),
        st.sampled_from(["merge", "replace"]),
    ),
    st.builds(delete, _ids, _version),
)


_fresh = itertools.count()


def _strip(result: dict[str, Any]) -> dict[str, Any]:
    result = dict(result)
    result["data"].pop("transactionApplied", None)
    return result


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(batches=st.lists(st.lists(_entry, min_size=1, max_size=5), min_size=1, max_size=5))
def test_same_results_as_memory_engine(make_backend, batches):
    sql = make_backend()
    t = f"r{next(_fresh)}"  # a fresh resource per example
    memory = MemoryStorage()
    for batch in batches:
        got = _strip(run(sql, write_op(t, *batch))[0])
        want = _strip(run(memory, write_op(t, *batch))[0])
        assert got == want
    assert sorted(rows(sql, t), key=lambda e: e["id"]) == sorted(
        rows(memory, t), key=lambda e: e["id"]
    )
