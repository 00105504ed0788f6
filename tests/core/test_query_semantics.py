"""One test per semantic rule of DESIGN §4 (the reference engine's behaviour, without coercion)."""

from __future__ import annotations

from typing import Any

import pytest

from atoma_actors.core.query import evaluate, field_value, normalize_query


def ids(entities: Any, query: dict | None = None) -> list[str]:
    return [e["id"] for e in evaluate(entities, query).data]


def where(entities: Any, f: dict) -> list[str]:
    return ids(entities, {"filter": f})


MIXED = {
    "t": {"id": "t", "v": True},
    "one": {"id": "one", "v": 1},
    "onef": {"id": "onef", "v": 1.0},
    "s1": {"id": "s1", "v": "1"},
    "nul": {"id": "nul", "v": None},
    "gone": {"id": "gone"},
    "zero": {"id": "zero", "v": 0},
    "f": {"id": "f", "v": False},
    "lst": {"id": "lst", "v": [1]},
}


# --- field lookup --------------------------------------------------------------------------


def test_field_value_own_key_first_then_dotted_path() -> None:
    e = {"a.b": "own", "a": {"b": "nested", "c": {"d": 4}}, "x": None}
    assert field_value(e, "a.b") == (True, "own")
    assert field_value(e, "a.c.d") == (True, 4)
    assert field_value(e, "x") == (True, None)
    assert field_value(e, "y") == (False, None)
    assert field_value(e, "a.zz") == (False, None)
    assert field_value({"a": "str"}, "a.b") == (False, None)
    assert field_value({"a": [1, 2]}, "a.0") == (False, None)  # lists are not walked
    assert where({"1": {"id": "1", "a": {"b": 2}}}, {"op": "eq", "field": "a.b", "value": 2}) == [
        "1"
    ]


# --- strict equality, null vs missing ------------------------------------------------------


def test_eq_is_strict_true_is_not_one_and_no_string_number_coercion() -> None:
    assert where(MIXED, {"op": "eq", "field": "v", "value": True}) == ["t"]
    assert where(MIXED, {"op": "eq", "field": "v", "value": 1}) == ["one", "onef"]
    assert where(MIXED, {"op": "eq", "field": "v", "value": 1.0}) == ["one", "onef"]
    assert where(MIXED, {"op": "eq", "field": "v", "value": "1"}) == ["s1"]
    assert where(MIXED, {"op": "eq", "field": "v", "value": 0}) == ["zero"]
    assert where(MIXED, {"op": "eq", "field": "v", "value": False}) == ["f"]


def test_eq_true_then_eq_one_do_not_share_compiled_code() -> None:
    # Filter nodes for `true` and `1` compare equal in Python; each must get its own code.
    assert where(MIXED, {"op": "eq", "field": "v", "value": True}) == ["t"]
    assert where(MIXED, {"op": "eq", "field": "v", "value": 1}) == ["one", "onef"]
    assert where(MIXED, {"op": "in", "field": "v", "values": [True]}) == ["t"]
    assert where(MIXED, {"op": "in", "field": "v", "values": [1]}) == ["one", "onef"]


def test_in_is_strict() -> None:
    assert where(MIXED, {"op": "in", "field": "v", "values": [1, "x"]}) == ["one", "onef"]
    assert where(MIXED, {"op": "in", "field": "v", "values": [False, "1"]}) == ["f", "s1"]
    assert where(MIXED, {"op": "in", "field": "v", "values": []}) == []


def test_null_matches_explicit_null_only_never_missing() -> None:
    assert where(MIXED, {"op": "eq", "field": "v", "value": None}) == ["nul"]
    assert where(MIXED, {"op": "in", "field": "v", "values": [None]}) == ["nul"]
    assert where(MIXED, {"op": "isNull", "field": "v"}) == ["nul"]
    exists = where(MIXED, {"op": "exists", "field": "v"})
    assert "nul" not in exists
    assert "gone" not in exists
    assert sorted(exists) == sorted(set(MIXED) - {"nul", "gone"})
    assert where(MIXED, {"op": "not", "arg": {"op": "isNull", "field": "v"}}).count("gone") == 1


def test_ranges_compare_same_kind_only() -> None:
    assert where(MIXED, {"op": "gte", "field": "v", "value": 1}) == ["one", "onef"]
    assert where(MIXED, {"op": "gt", "field": "v", "value": 0}) == ["one", "onef"]  # not True
    assert where(MIXED, {"op": "lt", "field": "v", "value": 1}) == ["zero"]  # not False, None
    assert where(MIXED, {"op": "gte", "field": "v", "value": "0"}) == ["s1"]  # only strings
    assert where(MIXED, {"op": "lte", "field": "v", "value": "9"}) == ["s1"]


def test_string_ranges_use_code_point_order() -> None:
    data = {x: {"id": x, "s": x} for x in ["Z", "a", "p10", "p2", "É", "e"]}
    assert where(data, {"op": "lt", "field": "s", "value": "a"}) == ["Z"]
    assert where(data, {"op": "gt", "field": "s", "value": "p10"}) == ["p2", "É"]
    assert where(data, {"op": "gt", "field": "s", "value": "e"}) == ["p10", "p2", "É"]


# --- case-insensitive string ops -----------------------------------------------------------


def test_starts_ends_contains_lower_case_both_sides_but_eq_does_not() -> None:
    data = {
        "1": {"id": "1", "name": "Ada Lovelace"},
        "2": {"id": "2", "name": "ADAM"},
        "3": {"id": "3", "name": 12},
        "4": {"id": "4"},
        "5": {"id": "5", "name": None},
    }
    assert where(data, {"op": "startsWith", "field": "name", "value": "aDa"}) == ["1", "2"]
    assert where(data, {"op": "endsWith", "field": "name", "value": "LACE"}) == ["1"]
    assert where(data, {"op": "contains", "field": "name", "value": "dA"}) == ["1", "2"]
    assert where(data, {"op": "contains", "field": "name", "value": "1"}) == []  # no coercion
    assert where(data, {"op": "contains", "field": "name", "value": ""}) == ["1", "2"]
    assert where(data, {"op": "eq", "field": "name", "value": "adam"}) == []
    assert where(data, {"op": "eq", "field": "name", "value": "ADAM"}) == ["2"]


# --- logic ---------------------------------------------------------------------------------


def test_and_or_not_and_their_empty_forms() -> None:
    data = {str(i): {"id": str(i), "n": i} for i in range(5)}
    gt1 = {"op": "gt", "field": "n", "value": 1}
    lt4 = {"op": "lt", "field": "n", "value": 4}
    assert where(data, {"op": "and", "args": [gt1, lt4]}) == ["2", "3"]
    assert where(
        data,
        {"op": "or", "args": [{"op": "not", "arg": gt1}, {"op": "eq", "field": "n", "value": 4}]},
    ) == ["0", "1", "4"]
    assert where(data, {"op": "and", "args": []}) == ["0", "1", "2", "3", "4"]
    assert where(data, {"op": "or", "args": []}) == []


# --- text ----------------------------------------------------------------------------------


TEXTS = {
    "1": {"id": "1", "body": "The quick brown Fox"},
    "2": {"id": "2", "body": "über-fast foxes, déjà vu"},
    "3": {"id": "3", "body": "fox_trot and 42 x12"},
    "4": {"id": "4", "body": "a" * 33 + " ok"},
    "5": {"id": "5", "body": 123456},
    "6": {"id": "6"},
}


def _text(query: str, **kw: Any) -> list[str]:
    return where(TEXTS, {"op": "text", "field": "body", "query": query, **kw})


def test_text_match_needs_every_query_token_case_insensitive() -> None:
    assert _text("FOX") == ["1", "3"]  # "fox_trot" is the tokens "fox" and "trot"
    assert _text("quick fox") == ["1"]
    assert _text("quick foxes") == []
    assert _text("ÜBER déjà") == ["2"]  # Unicode letters, lower-cased


def test_text_tokens_are_letter_digit_runs_of_3_to_32() -> None:
    assert _text("fox trot") == ["3"]  # "_" splits words
    assert _text("x12") == ["3"]
    assert _text("the a vu") == ["1"]  # "a" and "vu" are dropped, "the" stays
    assert _text("a" * 33) == []  # too long: dropped, so the query has no tokens
    assert _text("ok") == []  # too short: no tokens on the query side means no match
    assert _text("123456") == []  # a number field is not text


def test_text_fuzzy_distance_0_1_2_default_1() -> None:
    assert _text("quikc", mode="fuzzy") == []  # transposition is distance 2
    assert _text("quikc", mode="fuzzy", distance=2) == ["1"]
    assert _text("quik", mode="fuzzy") == ["1"]
    assert _text("quik", mode="fuzzy", distance=0) == []
    assert _text("quick", mode="fuzzy", distance=0) == ["1"]
    assert _text("foxs", mode="fuzzy") == ["1", "2", "3"]  # fox (1 away) and foxes (1 away)
    assert _text("zz", mode="fuzzy", distance=2) == []


# --- sorting -------------------------------------------------------------------------------


def test_sort_code_point_order_and_id_tie_breaker() -> None:
    data = {
        i: {"id": i, "s": s}
        for i, s in [("b", "p2"), ("a", "p10"), ("c", "Z"), ("d", "a"), ("e", "a")]
    }
    assert ids(data, {"sort": [{"field": "s", "dir": "asc"}]}) == ["c", "d", "e", "a", "b"]
    assert ids(data, {"sort": [{"field": "s", "dir": "desc"}]}) == ["b", "a", "d", "e", "c"]
    assert ids(data) == ["a", "b", "c", "d", "e"]  # no sort: id asc
    assert ids(data, {"sort": [{"field": "id", "dir": "desc"}]}) == ["e", "d", "c", "b", "a"]
    q = normalize_query({"sort": [{"field": "s", "dir": "desc"}]})
    assert q.sort == (("s", "desc"), ("id", "asc"))
    assert normalize_query({"sort": [{"field": "id", "dir": "desc"}]}).sort == (("id", "desc"),)


@pytest.mark.parametrize("direction", ["asc", "desc"])
def test_null_and_missing_sort_last_in_both_directions(direction: str) -> None:
    data = {
        "a": {"id": "a", "n": None},
        "b": {"id": "b"},
        "c": {"id": "c", "n": 2},
        "d": {"id": "d", "n": 10},
        "e": {"id": "e", "n": 2.5},
    }
    got = ids(data, {"sort": [{"field": "n", "dir": direction}]})
    assert got[-2:] == ["a", "b"]  # nulls last, tied, then by id
    assert got[:3] == (["c", "e", "d"] if direction == "asc" else ["d", "e", "c"])


def test_mixed_kinds_sort_numbers_then_strings_then_booleans_then_other() -> None:
    data = {
        "1": {"id": "1", "v": "a"},
        "2": {"id": "2", "v": 5},
        "3": {"id": "3", "v": True},
        "4": {"id": "4", "v": [1]},
        "5": {"id": "5", "v": None},
        "6": {"id": "6", "v": False},
        "7": {"id": "7", "v": -1.5},
    }
    assert ids(data, {"sort": [{"field": "v", "dir": "asc"}]}) == [
        "7",
        "2",
        "1",
        "6",
        "3",
        "4",
        "5",
    ]
    assert ids(data, {"sort": [{"field": "v", "dir": "desc"}]}) == [
        "4",
        "3",
        "6",
        "1",
        "2",
        "7",
        "5",
    ]


def test_multi_key_sort_with_mixed_directions() -> None:
    data = {
        "a": {"id": "a", "g": "x", "n": 1},
        "b": {"id": "b", "g": "y", "n": 3},
        "c": {"id": "c", "g": "x", "n": 2},
        "d": {"id": "d", "g": "y", "n": 3},
    }
    q = {"sort": [{"field": "g", "dir": "desc"}, {"field": "n", "dir": "asc"}]}
    assert ids(data, q) == ["b", "d", "a", "c"]


# --- offset pages --------------------------------------------------------------------------

TEN = {f"{i}": {"id": f"{i}", "n": i} for i in range(10)}


def page(p: dict) -> tuple[list[str], Any]:
    res = evaluate(TEN, {"page": p})
    return [e["id"] for e in res.data], res.page_info


def test_offset_pages_clamp_like_the_reference_engine() -> None:
    assert page({"mode": "offset", "limit": 3}) == (
        ["0", "1", "2"],
        page({"mode": "offset", "limit": 3})[1],
    )
    got, info = page({"mode": "offset", "limit": 3, "offset": 8})
    assert got == ["8", "9"]
    assert info.has_next is False
    got, info = page({"mode": "offset", "limit": 2.9, "offset": 1.7})  # floored
    assert got == ["1", "2"]
    assert info.has_next is True
    got, _ = page({"mode": "offset", "limit": 2, "offset": -5})  # negative offset: 0
    assert got == ["0", "1"]
    got, info = page({"mode": "offset", "limit": -1})  # limit -1: an empty page
    assert got == []
    assert info.has_next is True
    got, info = page({"mode": "offset", "offset": 7})  # no limit: the rest
    assert got == ["7", "8", "9"]
    assert info.has_next is False
    got, info = page({"mode": "offset", "limit": 0, "offset": 10})
    assert got == []
    assert info.has_next is False


def test_has_next_always_total_only_with_include_total() -> None:
    _, info = page({"mode": "offset", "limit": 5})
    assert info.total is None
    assert info.to_wire() == {"hasNext": True}
    _, info = page({"mode": "offset", "limit": 5, "includeTotal": True})
    assert info.total == 10
    res = evaluate(
        TEN,
        {
            "filter": {"op": "gt", "field": "n", "value": 6},
            "page": {"mode": "offset", "limit": 1, "includeTotal": True},
        },
    )
    assert res.page_info.total == 3
    res = evaluate(TEN, None)
    assert len(res.data) == 10
    assert res.page_info.has_next is False
    assert res.source == "local"


def test_evaluate_never_mutates_and_returns_the_stored_dicts() -> None:
    before = {k: dict(v) for k, v in TEN.items()}
    res = evaluate(
        TEN, {"sort": [{"field": "n", "dir": "desc"}], "page": {"mode": "offset", "limit": 3}}
    )
    assert before == TEN
    assert res.data[0] is TEN["9"]


# --- cursor pages --------------------------------------------------------------------------


def test_cursor_pages_forward_default_limit_and_cursor_of_last_item() -> None:
    big = {f"{i:03d}": {"id": f"{i:03d}"} for i in range(120)}
    res = evaluate(big, {"page": {"mode": "cursor"}})
    assert len(res.data) == 50
    assert res.page_info.has_next is True
    nxt = evaluate(big, {"page": {"mode": "cursor", "after": res.page_info.cursor}})
    assert nxt.data[0]["id"] == "050"
    last = evaluate(big, {"page": {"mode": "cursor", "limit": 100, "after": nxt.page_info.cursor}})
    assert [e["id"] for e in last.data] == [f"{i:03d}" for i in range(100, 120)]
    assert last.page_info.has_next is False


def test_cursor_before_returns_the_items_just_before_and_cursor_of_first_item() -> None:
    q = {"sort": [{"field": "n", "dir": "desc"}]}
    first = evaluate(TEN, {**q, "page": {"mode": "cursor", "limit": 4}})
    assert [e["id"] for e in first.data] == ["9", "8", "7", "6"]
    second = evaluate(
        TEN, {**q, "page": {"mode": "cursor", "limit": 4, "after": first.page_info.cursor}}
    )
    assert [e["id"] for e in second.data] == ["5", "4", "3", "2"]
    back = evaluate(
        TEN, {**q, "page": {"mode": "cursor", "limit": 2, "before": second.page_info.cursor}}
    )
    assert [e["id"] for e in back.data] == ["4", "3"]
    assert back.page_info.has_next is True  # more items before
    again = evaluate(
        TEN, {**q, "page": {"mode": "cursor", "limit": 9, "before": back.page_info.cursor}}
    )
    assert [e["id"] for e in again.data] == ["9", "8", "7", "6", "5"]
    assert again.page_info.has_next is False


def test_cursor_filters_may_change_between_pages() -> None:
    first = evaluate(TEN, {"page": {"mode": "cursor", "limit": 3}})
    odd = {"op": "in", "field": "n", "values": [1, 3, 5, 7, 9]}
    nxt = evaluate(
        TEN,
        {"filter": odd, "page": {"mode": "cursor", "limit": 2, "after": first.page_info.cursor}},
    )
    assert [e["id"] for e in nxt.data] == ["3", "5"]


def test_cursor_of_empty_page_is_none() -> None:
    res = evaluate({}, {"page": {"mode": "cursor"}})
    assert res.data == []
    assert res.page_info.cursor is None
    assert res.page_info.has_next is False


def test_field_names_and_values_never_become_code() -> None:
    odd = "x') or True or ('"
    data = {"1": {"id": "1", odd: "v"}, "2": {"id": "2"}}
    assert where(data, {"op": "eq", "field": odd, "value": "v"}) == ["1"]
    assert where(data, {"op": "eq", "field": "id", "value": "1' or '1"}) == []
    assert where(data, {"op": "in", "field": "a.b\n", "values": ["\\"]}) == []
