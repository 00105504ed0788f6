"""Property tests: the engine agrees with the reference evaluator on random data and queries."""

from __future__ import annotations

import base64
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from atoma_actors.core.query import evaluate

from .reference import reference_evaluate
from .strategies import entity_maps, queries, sorts

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _values(token: str | None) -> list[Any] | None:
    if token is None:
        return None
    return json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))["values"]


def _check(entities: dict[str, dict], query: dict[str, Any]) -> Any:
    got = evaluate(entities, query)
    want = reference_evaluate(list(entities.values()), query)
    assert [e["id"] for e in got.data] == [e["id"] for e in want["data"]]
    assert got.page_info.has_next == want["has_next"]
    assert got.page_info.total == want["total"]
    assert _values(got.page_info.cursor) == want["cursor_values"]
    return got


@SETTINGS
@given(entity_maps(), queries())
def test_engine_matches_reference(entities: dict[str, dict], query: dict[str, Any]) -> None:
    _check(entities, query)


@settings(max_examples=100, deadline=None)
@given(entity_maps(), queries())
def test_iterable_input_matches_mapping_input(entities: dict[str, dict], query: dict) -> None:
    by_map = evaluate(entities, query)
    by_list = evaluate(list(entities.values()), query)
    assert by_map == by_list


@settings(max_examples=150, deadline=None)
@given(entity_maps(), st.one_of(st.none(), sorts), st.integers(1, 4))
def test_cursor_walk_forward_and_back(
    entities: dict[str, dict], sort: list | None, limit: int
) -> None:
    query: dict[str, Any] = {"sort": sort} if sort is not None else {}
    everything = [e["id"] for e in evaluate(entities, query).data]
    seen: list[str] = []
    pages: list[list[str]] = []
    page: dict[str, Any] = {"mode": "cursor", "limit": limit}
    for _ in range(len(entities) + 2):
        res = _check(entities, {**query, "page": page})
        pages.append([e["id"] for e in res.data])
        seen += pages[-1]
        if not res.page_info.has_next:
            break
        page = {"mode": "cursor", "limit": limit, "after": res.page_info.cursor}
    assert seen == everything
    # Walk back with `before`, starting from the last item: every page comes back in order.
    token = res.page_info.cursor
    back = everything[-1:]
    for _ in range(len(entities) + 2):
        res = _check(
            entities, {**query, "page": {"mode": "cursor", "limit": limit, "before": token}}
        )
        back = [e["id"] for e in res.data] + back
        if not res.page_info.has_next:
            break
        token = res.page_info.cursor
    assert back == everything
