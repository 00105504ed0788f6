"""Benchmark of the query engine (run: `.venv/bin/python bench/query.py`).

Prints, for 10k and 100k entities, from one run:
1. a filter + sort + page query: our `evaluate` vs a plain list comprehension + `sorted`
   (target: at most 2x the baseline);
2. a selective equality filter on an indexed field: `evaluate(..., indexes=...)` vs a full
   scan through the same engine (target: at least 10x faster).
Figures are ratios against a baseline measured in the same run; nothing here asserts timing.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

from atoma_actors.core.indexes import IndexSet
from atoma_actors.core.query import evaluate, normalize_query

STATUSES = ["active", "pending", "blocked", "deleted"]


def make_entities(n: int, seed: int = 7) -> dict[str, dict[str, Any]]:
    rnd = random.Random(seed)
    out = {}
    for i in range(n):
        eid = f"u{i:07d}"
        out[eid] = {
            "id": eid,
            "version": 1,
            "age": rnd.randint(0, 99),
            "score": round(rnd.random() * 1000, 3),
            "status": rnd.choice(STATUSES),
            "email": f"user{rnd.randrange(n)}@example.com",
            "team": f"team-{rnd.randrange(max(1, n // 10))}",
        }
    return out


def best_of(fn: Callable[[], Any], repeat: int = 7) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    print(f"{'case':<52}{'n':>8}{'ours ms':>10}{'base ms':>10}{'ratio':>9}")
    for n in (10_000, 100_000):
        entities = make_entities(n)
        values = list(entities.values())

        query = normalize_query(
            {
                "filter": {
                    "op": "and",
                    "args": [
                        {"op": "gte", "field": "age", "value": 30},
                        {"op": "in", "field": "status", "values": ["active", "pending"]},
                    ],
                },
                "sort": [{"field": "score", "dir": "desc"}],
                "page": {"mode": "offset", "offset": 0, "limit": 20, "includeTotal": True},
            }
        )

        def baseline(values: list[dict] = values) -> list[dict]:
            hits = [
                e
                for e in values
                if isinstance(e.get("age"), int)
                and e["age"] >= 30
                and e.get("status") in ("active", "pending")
            ]
            return sorted(hits, key=lambda e: (-e["score"], e["id"]))[:20]

        ours = evaluate(entities, query)
        assert [e["id"] for e in ours.data] == [e["id"] for e in baseline()]
        t_ours = best_of(lambda q=query, ents=entities: evaluate(ents, q))
        t_base = best_of(baseline)
        print(
            f"{'filter+sort+page vs list comp + sorted':<52}{n:>8}"
            f"{t_ours * 1e3:>10.2f}{t_base * 1e3:>10.2f}{t_ours / t_base:>8.2f}x"
        )

        # The same query paged deeper (offset past the heap threshold: full sort path).
        deep = normalize_query(
            {
                "filter": query.to_wire()["filter"],
                "sort": [{"field": "score", "dir": "desc"}],
                "page": {"mode": "offset", "offset": n // 4, "limit": 20},
            }
        )

        def baseline_deep(values: list[dict] = values, off: int = n // 4) -> list[dict]:
            hits = [
                e
                for e in values
                if isinstance(e.get("age"), int)
                and e["age"] >= 30
                and e.get("status") in ("active", "pending")
            ]
            return sorted(hits, key=lambda e: (-e["score"], e["id"]))[off : off + 20]

        assert [e["id"] for e in evaluate(entities, deep).data] == [
            e["id"] for e in baseline_deep()
        ]
        t_ours = best_of(lambda q=deep, ents=entities: evaluate(ents, q))
        t_base = best_of(baseline_deep)
        print(
            f"{'  same, deep offset (full sort)':<52}{n:>8}"
            f"{t_ours * 1e3:>10.2f}{t_base * 1e3:>10.2f}{t_ours / t_base:>8.2f}x"
        )

        indexes = IndexSet(
            [
                {"field": "email", "type": "string"},
                {"field": "age", "type": "number"},
                {"field": "team", "type": "string"},
            ]
        )
        specs = list(indexes.specs)
        t0 = time.perf_counter()
        for e in values:
            indexes.add(e)
        build = time.perf_counter() - t0
        bulk_indexes = IndexSet([{"field": f, "type": t} for f, t in specs])
        t0 = time.perf_counter()
        bulk_indexes.add_many(values)
        bulk = time.perf_counter() - t0
        target = values[n // 2]
        selective = normalize_query(
            {
                "filter": {
                    "op": "and",
                    "args": [
                        {"op": "eq", "field": "team", "value": target["team"]},
                        {"op": "gte", "field": "age", "value": 10},
                    ],
                },
                "sort": [{"field": "age", "dir": "asc"}],
                "page": {"mode": "cursor", "limit": 10},
            }
        )
        assert evaluate(entities, selective, indexes=indexes) == evaluate(entities, selective)
        t_idx = best_of(
            lambda q=selective, ents=entities, ix=indexes: evaluate(ents, q, indexes=ix)
        )
        t_scan = best_of(lambda q=selective, ents=entities: evaluate(ents, q))
        print(
            f"{'indexed eq (team) + range vs full scan (speed-up)':<52}{n:>8}"
            f"{t_idx * 1e3:>10.3f}{t_scan * 1e3:>10.2f}{t_scan / t_idx:>8.0f}x"
        )
        by_email = normalize_query(
            {"filter": {"op": "eq", "field": "email", "value": target["email"]}}
        )
        t_idx = best_of(lambda q=by_email, ents=entities, ix=indexes: evaluate(ents, q, indexes=ix))
        t_scan = best_of(lambda q=by_email, ents=entities: evaluate(ents, q))
        print(
            f"{'indexed eq (email) vs full scan (speed-up)':<52}{n:>8}"
            f"{t_idx * 1e3:>10.3f}{t_scan * 1e3:>10.2f}{t_scan / t_idx:>8.0f}x"
        )
        print(
            f"{'  index build, 3 indexes, add() each / add_many()':<52}{n:>8}"
            f"{build * 1e3:>10.1f}{bulk * 1e3:>10.1f}"
        )


if __name__ == "__main__":
    main()
