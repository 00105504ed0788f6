"""Every way a query can be wrong raises ValidationError, before any work is done."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from atoma_actors.core.cursor import decode_cursor, encode_cursor
from atoma_actors.core.query import evaluate, normalize_query
from atoma_actors.protocol.errors import ValidationError

F = "field"

BAD_FILTERS: list[tuple[Any, str]] = [
    ({"op": "nope", F: "a", "value": 1}, "unknown op"),
    ({F: "a", "value": 1}, "unknown op"),
    ("eq", "expected an object"),
    ([{"op": "eq"}], "expected an object"),
    ({"op": "eq", F: "a"}, "missing"),
    ({"op": "eq", F: "a", "value": 1, "extra": 2}, "unexpected"),
    ({"op": "eq", F: "", "value": 1}, "field"),
    ({"op": "eq", F: 3, "value": 1}, "field"),
    ({"op": "eq", F: "a", "value": [1]}, "value"),
    ({"op": "eq", F: "a", "value": {"x": 1}}, "value"),
    ({"op": "eq", F: "a", "value": float("nan")}, "value"),
    ({"op": "gt", F: "a", "value": None}, "value"),
    ({"op": "gt", F: "a", "value": True}, "value"),
    ({"op": "lte", F: "a", "value": [1]}, "value"),
    ({"op": "in", F: "a", "values": 1}, "list"),
    ({"op": "in", F: "a", "values": [[1]]}, "values[0]"),
    ({"op": "in", F: "a"}, "missing"),
    ({"op": "startsWith", F: "a", "value": 1}, "string"),
    ({"op": "contains", F: "a", "value": None}, "string"),
    ({"op": "isNull", F: "a", "value": 1}, "unexpected"),
    ({"op": "exists"}, "missing"),
    ({"op": "and", "args": {"op": "eq"}}, "list"),
    ({"op": "and", "args": [{"op": "bogus"}]}, "args[0]"),
    ({"op": "or"}, "missing"),
    ({"op": "not", "args": []}, "unexpected"),
    ({"op": "not", "arg": None}, "expected an object"),
    ({"op": "text", F: "a"}, "missing"),
    ({"op": "text", F: "a", "query": 1}, "query"),
    ({"op": "text", F: "a", "query": "x", "mode": "regex"}, "mode"),
    ({"op": "text", F: "a", "query": "x", "distance": 3}, "distance"),
    ({"op": "text", F: "a", "query": "x", "distance": True}, "distance"),
    ({"op": "text", F: "a", "query": "x", "distance": 1.5}, "distance"),
]


@pytest.mark.parametrize(("bad", "hint"), BAD_FILTERS)
def test_malformed_filters_are_refused_with_a_useful_message(bad: Any, hint: str) -> None:
    with pytest.raises(ValidationError) as info:
        normalize_query({"filter": bad})
    assert hint in info.value.message
    assert info.value.kind == "validation"


def test_nested_error_names_its_path() -> None:
    bad = {
        "op": "and",
        "args": [
            {"op": "eq", F: "a", "value": 1},
            {"op": "not", "arg": {"op": "gt", F: "b", "value": None}},
        ],
    }
    with pytest.raises(ValidationError, match=r"filter\(and\)\.args\[1\]\(not\)\.arg\(gt\)"):
        normalize_query({"filter": bad})


BAD_SORTS: list[tuple[Any, str]] = [
    ({"field": "a", "dir": "asc"}, "list"),
    ("a", "list"),
    (["a"], "sort[0]"),
    ([{"field": "a"}], "dir"),
    ([{"field": "a", "dir": "ASC"}], "dir"),
    ([{"field": "a", "dir": "descending"}], "dir"),
    ([{"field": "", "dir": "asc"}], "field"),
    ([{"dir": "asc"}], "field"),
    ([{"field": "a", "dir": "asc", "nulls": "first"}], "unexpected"),
]


@pytest.mark.parametrize(("bad", "hint"), BAD_SORTS)
def test_malformed_sorts_are_refused(bad: Any, hint: str) -> None:
    with pytest.raises(ValidationError) as info:
        normalize_query({"sort": bad})
    assert hint in info.value.message


BAD_PAGES: list[tuple[Any, str]] = [
    ("offset", "object"),
    ({"mode": "pages"}, "mode"),
    ({"mode": "offset", "limit": "10"}, "limit"),
    ({"mode": "offset", "limit": True}, "limit"),
    ({"mode": "offset", "offset": "1"}, "offset"),
    ({"mode": "offset", "after": "x"}, "unexpected"),
    ({"mode": "offset", "includeTotal": "yes"}, "includeTotal"),
    ({"mode": "cursor", "offset": 3}, "unexpected"),
    ({"mode": "cursor", "after": 5}, "after"),
    ({"mode": "cursor", "after": "garbage!!", "limit": 1}, "cursor"),
    ({"mode": "cursor", "before": ""}, "cursor"),
]


@pytest.mark.parametrize(("bad", "hint"), BAD_PAGES)
def test_malformed_pages_are_refused(bad: Any, hint: str) -> None:
    with pytest.raises(ValidationError) as info:
        normalize_query({"page": bad})
    assert hint in info.value.message


def test_unknown_top_level_keys_and_non_objects_are_refused() -> None:
    with pytest.raises(ValidationError, match="unexpected"):
        normalize_query({"filter": None, "limit": 3})
    with pytest.raises(ValidationError):
        normalize_query(["filter"])  # type: ignore[arg-type]


def test_an_invalid_query_never_returns_a_partial_result() -> None:
    with pytest.raises(ValidationError):
        evaluate(
            {"a": {"id": "a"}},
            {"filter": {"op": "eq", F: "id", "value": "a"}, "sort": [{"field": "x", "dir": "up"}]},
        )


def test_none_and_empty_queries_mean_everything() -> None:
    assert normalize_query(None) == normalize_query({})
    q = normalize_query({})
    assert q.filter is None
    assert q.page is None
    assert q.sort == (("id", "asc"),)


def test_query_round_trips_through_its_wire_form() -> None:
    raw = {
        "filter": {
            "op": "and",
            "args": [
                {"op": "in", F: "a", "values": [1, None]},
                {"op": "text", F: "t", "query": "x", "mode": "fuzzy", "distance": 2},
            ],
        },
        "sort": [{"field": "a", "dir": "desc"}],
        "page": {"mode": "offset", "limit": 5, "offset": 2, "includeTotal": True},
    }
    q = normalize_query(raw)
    assert normalize_query(q.to_wire()) == q
    assert q.to_wire()["sort"] == [{"field": "a", "dir": "desc"}, {"field": "id", "dir": "asc"}]


# --- cursor tokens -------------------------------------------------------------------------

SORT = [{"field": "n", "dir": "desc"}, {"field": "id", "dir": "asc"}]


def test_cursor_codec_round_trip_and_upstream_shape() -> None:
    token = encode_cursor(SORT, [3.5, "é/+"])
    assert "=" not in token
    assert "+" not in token
    assert "/" not in token
    payload = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    assert payload == {"v": 1, "sort": SORT, "values": [3.5, "é/+"]}
    assert decode_cursor(token, SORT) == [3.5, "é/+"]
    # Standard base64 with padding (another client's encoder) is accepted too.
    std = base64.b64encode(json.dumps(payload).encode()).decode()
    assert decode_cursor(std, [("n", "desc"), ("id", "asc")]) == [3.5, "é/+"]


def _token(payload: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode()


@pytest.mark.parametrize(
    "token",
    [
        "",
        "!!!",
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
        _token([1, 2]),
        _token({"v": 2, "sort": SORT, "values": [1, "a"]}),
        _token({"v": 1, "sort": SORT}),
        _token({"v": 1, "sort": "n", "values": [1, "a"]}),
        _token({"v": 1, "sort": SORT, "values": [1]}),
        _token(
            {
                "v": 1,
                "sort": [{"field": "n", "dir": "asc"}, {"field": "id", "dir": "asc"}],
                "values": [1, "a"],
            }
        ),
    ],
)
def test_bad_or_mismatched_cursor_tokens_are_refused(token: str) -> None:
    with pytest.raises(ValidationError):
        decode_cursor(token, SORT)


def test_cursor_used_with_other_sort_rules_is_an_error() -> None:
    data = {str(i): {"id": str(i), "n": i} for i in range(5)}
    first = evaluate(
        data, {"sort": [{"field": "n", "dir": "desc"}], "page": {"mode": "cursor", "limit": 2}}
    )
    with pytest.raises(ValidationError, match="sort"):
        evaluate(
            data,
            {
                "sort": [{"field": "n", "dir": "asc"}],
                "page": {"mode": "cursor", "after": first.page_info.cursor},
            },
        )
    with pytest.raises(ValidationError, match="sort"):
        evaluate(data, {"page": {"mode": "cursor", "before": first.page_info.cursor}})


def test_cursor_page_refuses_after_and_before_together() -> None:
    token = encode_cursor([{"field": "id", "dir": "asc"}], ["a"])
    with pytest.raises(ValidationError, match="not both"):
        normalize_query({"page": {"mode": "cursor", "after": token, "before": token}})


def test_cursor_query_keeps_decoded_values_for_keyset_backends() -> None:
    token = encode_cursor([{"field": "n", "dir": "desc"}, {"field": "id", "dir": "asc"}], [7, "x"])
    q = normalize_query({"sort": [{"field": "n", "dir": "desc"}], "page": {"after": token}})
    assert q.page is not None
    assert q.page.mode == "cursor"
    assert q.page.values == (7, "x")
    assert q.page.limit == 50
