"""IndexSet: lookups, incremental upkeep, and the rule that an index never changes a result."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from atoma_actors.core.filters import compile_filter
from atoma_actors.core.indexes import IndexSet
from atoma_actors.core.query import evaluate, normalize_query
from atoma_actors.protocol.errors import ValidationError

from .strategies import edits, entity_maps, filters, queries

SPECS = [
    {"field": "n", "type": "number"},
    {"field": "s", "type": "string"},
    {"field": "t", "type": "text"},
    {"field": "nested.x", "type": "date"},
    {"field": "a.b", "type": "string"},
]


def _ids(result: Any) -> list[str]:
    return [e["id"] for e in result.data]


def _indexed(entities: dict[str, dict], *, bulk: bool = False) -> IndexSet:
    idx = IndexSet(SPECS)
    if bulk:
        idx.add_many(entities.values())
    else:
        for e in entities.values():
            idx.add(e)
    return idx


# --- properties ----------------------------------------------------------------------------


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(entity_maps(), st.lists(queries(), min_size=1, max_size=3))
def test_results_with_indexes_equal_results_without(entities: dict, qs: list[dict]) -> None:
    idx = _indexed(entities)
    for q in qs:
        assert evaluate(entities, q, indexes=idx) == evaluate(entities, q)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(entity_maps(), edits, st.lists(filters, min_size=1, max_size=4))
def test_incremental_upkeep_keeps_candidates_a_superset(
    entities: dict, steps: list, fs: list[dict]
) -> None:
    entities = dict(entities)
    idx = _indexed(entities)
    for action, eid, body in steps:
        old = entities.get(eid)
        if action == "put":
            new = {"id": eid, **body}
            if old is None:
                idx.add(new)
            else:
                idx.replace(old, new)
            entities[eid] = new
        elif old is not None:
            idx.remove(old)
            del entities[eid]
    fresh = _indexed(entities, bulk=True)
    for f in fs:
        q = normalize_query({"filter": f})
        pred = compile_filter(q.filter)
        truth = {i for i, e in entities.items() if pred(e)}
        got = idx.candidates(q)
        if got is not None:
            assert truth <= got
        # Incremental upkeep gives exactly what a rebuild from scratch gives.
        assert got == fresh.candidates(q)
        assert evaluate(entities, q, indexes=idx) == evaluate(entities, q)


# --- unit tests ----------------------------------------------------------------------------

PEOPLE = {
    "1": {"id": "1", "age": 30, "city": "Oslo", "bio": "loves apple pie"},
    "2": {"id": "2", "age": 41.5, "city": "oslo", "bio": "banana bread"},
    "3": {"id": "3", "age": True, "city": None, "bio": 12345},
    "4": {"id": "4", "age": "30", "bio": "Apple and banana"},
    "5": {"id": "5", "age": None, "city": ["Oslo"]},
    "6": {"id": "6", "age": 1, "city": "Bergen"},
}
PEOPLE_SPECS = [
    {"field": "age", "type": "number"},
    {"field": "city", "type": "string"},
    {"field": "bio", "type": "text"},
]


@pytest.fixture
def people_index() -> IndexSet:
    idx = IndexSet(PEOPLE_SPECS)
    for e in PEOPLE.values():
        idx.add(e)
    return idx


def _cands(idx: IndexSet, f: dict) -> set[str] | None:
    return idx.candidates({"filter": f})


def test_eq_lookup_is_strict_by_kind(people_index: IndexSet) -> None:
    assert _cands(people_index, {"op": "eq", "field": "age", "value": 30}) == {"1"}
    assert _cands(people_index, {"op": "eq", "field": "age", "value": "30"}) == {"4"}
    assert _cands(people_index, {"op": "eq", "field": "age", "value": 1}) == {"6"}
    assert _cands(people_index, {"op": "eq", "field": "age", "value": True}) == {"3"}
    assert _cands(people_index, {"op": "eq", "field": "age", "value": None}) == {"5"}
    assert _cands(people_index, {"op": "in", "field": "city", "values": ["Oslo", None]}) == {
        "1",
        "3",
    }


def test_range_scan_compares_same_kind_only(people_index: IndexSet) -> None:
    assert _cands(people_index, {"op": "gte", "field": "age", "value": 30}) == {"1", "2"}
    assert _cands(people_index, {"op": "lt", "field": "age", "value": 30}) == {"6"}
    assert _cands(people_index, {"op": "gt", "field": "age", "value": "2"}) == {"4"}
    assert _cands(people_index, {"op": "lte", "field": "city", "value": "P"}) == {"1", "6"}


def test_text_index_match_and_fuzzy(people_index: IndexSet) -> None:
    text = {"op": "text", "field": "bio"}
    assert _cands(people_index, {**text, "query": "apple"}) == {"1", "4"}
    assert _cands(people_index, {**text, "query": "APPLE banana"}) == {"4"}
    assert _cands(people_index, {**text, "query": "aple", "mode": "fuzzy"}) == {"1", "4"}
    assert _cands(people_index, {**text, "query": "aple", "mode": "fuzzy", "distance": 0}) == set()
    assert _cands(people_index, {**text, "query": "an of"}) == set()  # no tokens: no match


def test_planner_combines_and_or_not(people_index: IndexSet) -> None:
    eq30 = {"op": "eq", "field": "age", "value": 30}
    oslo = {"op": "eq", "field": "city", "value": "Oslo"}
    unindexed = {"op": "eq", "field": "name", "value": "x"}
    assert _cands(people_index, {"op": "and", "args": [eq30, unindexed]}) == {"1"}
    assert _cands(people_index, {"op": "or", "args": [eq30, oslo]}) == {"1"}
    assert _cands(people_index, {"op": "or", "args": [eq30, unindexed]}) is None
    assert _cands(people_index, {"op": "not", "arg": eq30}) is None
    assert _cands(people_index, {"op": "or", "args": []}) == set()
    assert people_index.candidates(None) is None
    assert _cands(people_index, {"op": "exists", "field": "age"}) is None


def test_replace_and_remove_update_incrementally(people_index: IndexSet) -> None:
    people_index.replace(PEOPLE["1"], {**PEOPLE["1"], "age": 31, "bio": "cherry"})
    assert _cands(people_index, {"op": "eq", "field": "age", "value": 30}) == set()
    assert _cands(people_index, {"op": "eq", "field": "age", "value": 31}) == {"1"}
    assert _cands(people_index, {"op": "text", "field": "bio", "query": "apple"}) == {"4"}
    people_index.remove(PEOPLE["4"])
    assert _cands(people_index, {"op": "text", "field": "bio", "query": "apple"}) == set()
    people_index.replace(None, {"id": "9", "age": 31})
    assert _cands(people_index, {"op": "eq", "field": "age", "value": 31}) == {"1", "9"}
    people_index.clear()
    assert _cands(people_index, {"op": "gte", "field": "age", "value": 0}) == set()


def test_candidates_are_fresh_sets(people_index: IndexSet) -> None:
    got = _cands(people_index, {"op": "eq", "field": "age", "value": 30})
    assert got is not None
    got.add("zzz")
    assert _cands(people_index, {"op": "eq", "field": "age", "value": 30}) == {"1"}


def test_evaluate_uses_the_planner_and_explicit_candidates(people_index: IndexSet) -> None:
    q = {"filter": {"op": "gte", "field": "age", "value": 1}}
    assert _ids(evaluate(PEOPLE, q, indexes=people_index)) == ["1", "2", "6"]
    # Explicit candidates only narrow; the filter still runs on them.
    assert _ids(evaluate(PEOPLE, q, candidates={"2", "3", "4"})) == ["2"]
    assert _ids(evaluate(PEOPLE, q, candidates={"2", "missing"}, indexes=people_index)) == ["2"]
    assert _ids(evaluate(list(PEOPLE.values()), q, candidates={"6"})) == ["6"]
    # More candidate ids than entities still restricts.
    two = {"1": PEOPLE["1"], "2": PEOPLE["2"]}
    assert _ids(evaluate(two, q, candidates={"1", "x", "y"})) == ["1"]


@pytest.mark.parametrize(
    "specs",
    [
        [{"field": "a", "type": "blob"}],
        [{"field": "", "type": "string"}],
        [{"type": "string"}],
        ["a"],
    ],
)
def test_bad_index_specs_are_refused(specs: list) -> None:
    with pytest.raises(ValidationError):
        IndexSet(specs)


def test_range_scan_is_skipped_when_an_exact_lookup_is_smaller() -> None:
    ents = {f"{i:03d}": {"id": f"{i:03d}", "age": i, "team": f"t{i % 50}"} for i in range(200)}
    idx = IndexSet([{"field": "age", "type": "number"}, {"field": "team", "type": "string"}])
    idx.add_many(ents.values())
    team = {"op": "eq", "field": "team", "value": "t3"}
    wide = {"op": "gte", "field": "age", "value": 1}
    narrow = {"op": "gte", "field": "age", "value": 190}
    # The wide range is not worth scanning: candidates are the team's 4 ids.
    assert _cands(idx, {"op": "and", "args": [wide, team]}) == {"003", "053", "103", "153"}
    # A narrow range is estimated smaller than the 20 ids of five teams, so it intersects.
    teams = {"op": "in", "field": "team", "values": [f"t{i}" for i in range(45, 50)]}
    got = _cands(idx, {"op": "and", "args": [narrow, teams]})
    assert got == {f"{i:03d}" for i in range(195, 200)}
    assert evaluate(ents, {"filter": {"op": "and", "args": [wide, team]}}, indexes=idx).data == [
        ents["003"],
        ents["053"],
        ents["103"],
        ents["153"],
    ]


def test_from_schema_and_entity_without_id() -> None:
    idx = IndexSet.from_schema({"indexes": [{"field": "a", "type": "number"}]})
    assert idx.specs == (("a", "number"),)
    assert IndexSet.from_schema(None).specs == ()
    with pytest.raises(ValidationError):
        idx.add({"a": 1})
