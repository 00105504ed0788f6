"""Values at the edges of what the databases bind: integers wider than int32/int64 in
filters, pages and cursors, path steps PostgreSQL would read as array indexes, and crafted
cursor tokens. Each gives the local engine's answer or a validation error, never an
adapter or internal error."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from sql_support import create, items, query_op, run1

from atoma_actors.core.query import evaluate


def _seed(backend, resource: str, values: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = items(backend, resource, *[create(f"e{i}", v) for i, v in enumerate(values)])
    assert all(r["ok"] for r in out), out
    return run1(backend, query_op(resource))["data"]["data"]


def _same(backend, resource: str, stored: list[dict[str, Any]], query: dict) -> dict:
    res = run1(backend, query_op(resource, query))
    assert res["ok"], res
    want = evaluate(stored, query)
    assert [e["id"] for e in res["data"]["data"]] == [e["id"] for e in want.data]
    return res["data"]


@pytest.mark.parametrize(
    "flt",
    [
        {"op": "lt", "field": "n", "value": 2**63},
        {"op": "gt", "field": "n", "value": -(2**63) - 1},
        {"op": "eq", "field": "n", "value": 2**64 - 1},
        {"op": "in", "field": "n", "values": [5, 2**64 - 1]},
        {"op": "not", "arg": {"op": "gte", "field": "n", "value": 2**70}},
    ],
)
def test_filter_values_wider_than_int64(backend, flt):
    stored = _seed(backend, "t", [{"n": 5}, {"n": 2**64 - 1}, {"n": -7.5}, {"n": "x"}])
    _same(backend, "t", stored, {"filter": flt})


def test_offset_and_limit_beyond_bigint(backend):
    stored = _seed(backend, "t", [{"n": 1}, {"n": 2}])
    found = _same(backend, "t", stored, {"page": {"mode": "offset", "offset": 1e30, "limit": 1}})
    assert found["data"] == []
    found = _same(backend, "t", stored, {"page": {"mode": "offset", "limit": 2**64}})
    assert len(found["data"]) == 2 and found["pageInfo"]["hasNext"] is False


@pytest.mark.parametrize("big", [2**31, 1_700_000_000_000, 2**53, 2**63 - 1])
def test_cursor_pages_over_wide_integers(backend, big):
    """The keyset binds the cursor's number next to the sort column: an int32 bind would be
    out of range on PostgreSQL."""
    stored = _seed(backend, "t", [{"h": big}, {"h": 1.5}, {"h": "x"}, {"h": -big}, {"h": True}])
    q: dict[str, Any] = {
        "sort": [{"field": "h", "dir": "asc"}],
        "page": {"mode": "cursor", "limit": 1},
    }
    seen = []
    for _ in range(len(stored) + 1):
        res = run1(backend, query_op("t", q))
        assert res["ok"], res
        seen += [e["id"] for e in res["data"]["data"]]
        if not res["data"]["pageInfo"]["hasNext"]:
            break
        q = {
            **q,
            "page": {"mode": "cursor", "limit": 1, "after": res["data"]["pageInfo"]["cursor"]},
        }
    assert seen == [e["id"] for e in evaluate(stored, {"sort": q["sort"]}).data]


@pytest.mark.parametrize("field", ["a.1", "a.+1", "a. 1", "a.-0", "a.\t1"])
def test_number_like_path_steps_do_not_index_arrays(backend, field):
    """The engine walks mappings only; PostgreSQL's path steps would index the array."""
    stored = _seed(backend, "t", [{"a": ["p", "q"]}, {"a": {field.split(".")[1]: "q"}}])
    found = _same(backend, "t", stored, {"filter": {"op": "eq", "field": field, "value": "q"}})
    assert [e["id"] for e in found["data"]] == ["e1"]


def _token(sort: list[dict[str, str]], values: list[Any]) -> str:
    # json.dumps writes Infinity and escapes lone surrogates: what a crafted token may hold.
    raw = json.dumps({"v": 1, "sort": sort, "values": values}).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@pytest.mark.parametrize(
    ("sort", "value"),
    [
        ({"field": "id", "dir": "asc"}, 5),
        ({"field": "id", "dir": "asc"}, {"x": 1}),
        ({"field": "n", "dir": "asc"}, float("inf")),
        ({"field": "n", "dir": "desc"}, "\ud800"),
        ({"field": "id", "dir": "asc"}, "a\x00b"),
    ],
)
def test_crafted_cursor_values_are_validation_errors(backend, sort, value):
    _seed(backend, "t", [{"n": 1}, {"n": 2}])
    page = {"mode": "cursor", "limit": 1, "after": _token([sort], [value])}
    res = run1(backend, query_op("t", {"sort": [sort], "page": page}))
    if value == "a\x00b" and backend.dialect == "sqlite":
        assert res["ok"], res  # SQLite text holds U+0000: a plain (if unusual) id
        return
    assert not res["ok"], res
    assert (res["error"]["kind"], res["error"]["code"]) == ("validation", "INVALID_CURSOR"), res
