"""Smoke test of the engine's public entry points (the detailed rules live in test_semantics)."""

from atoma_actors.core.query import Query, QueryResult, evaluate, normalize_query


def test_filter_sort_page_round_trip() -> None:
    ents = {str(i): {"id": str(i), "age": i % 5} for i in range(10)}
    q = normalize_query(
        {
            "filter": {"op": "gte", "field": "age", "value": 3},
            "sort": [{"field": "age", "dir": "desc"}],
            "page": {"mode": "offset", "limit": 3, "includeTotal": True},
        }
    )
    assert isinstance(q, Query)
    assert normalize_query(q) is q
    res = evaluate(ents, q)
    assert isinstance(res, QueryResult)
    assert [e["id"] for e in res.data] == ["4", "9", "3"]
    assert res.page_info.has_next is True
    assert res.page_info.total == 4
    assert res.data[0] is ents["4"]
