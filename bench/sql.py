"""SQL backend benchmark: ratios against raw sqlite3 measured in the same run (not a test).

1. 10k creates as one write op through `SqlBackend.execute_ops` vs raw `sqlite3`
   `executemany` of the same JSON rows in one transaction (same pragmas: WAL, synchronous=FULL).
   Target: at most 2x.
2. An indexed equality query on 100k rows (a declared index on `group`) through the backend vs
   the same SQL on raw sqlite3 against an equivalent expression index.
Run: .venv/bin/python bench/sql.py [--rows 100000]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from atoma_backend_sql import SqlBackend

from atoma_actors.protocol import (
    CreateEntry,
    CreateItem,
    ItemMeta,
    Meta,
    QueryOp,
    QuerySpec,
    WriteOp,
    WriteSpec,
)

N_CREATE = 10_000


def entity(i: int) -> dict:
    return {"name": f"user {i}", "group": i % 1000, "age": 20 + i % 50, "tags": ["a", "b"]}


def create_op(start: int, n: int, tag: str) -> WriteOp:
    entries = [
        CreateEntry(
            item=CreateItem(
                id=f"u{i}",
                value=entity(i),
                meta=ItemMeta(idempotency_key=f"{tag}-{i}", client_time_ms=0),
            )
        )
        for i in range(start, start + n)
    ]
    return WriteOp(op_id="w", write=WriteSpec(resource="users", entries=entries))


def raw_connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE IF NOT EXISTS t (id TEXT PRIMARY KEY, version INT, data TEXT)")
    return conn


def bench_creates(tmp: Path, repeats: int = 3) -> tuple[float, float]:
    ours, raw = [], []
    for r in range(repeats):
        op = create_op(0, N_CREATE, f"r{r}")  # building models is the caller's cost, not timed
        with SqlBackend(f"sqlite:///{tmp / f'b{r}.db'}") as backend:
            t0 = time.perf_counter()
            results, _ = backend.execute_ops([op], Meta())
            ours.append(time.perf_counter() - t0)
            assert results[0].ok
            assert all(x.ok for x in results[0].data.results)
        conn = raw_connect(tmp / f"raw{r}.db")
        t0 = time.perf_counter()
        rows = [
            (f"u{i}", 1, json.dumps({**entity(i), "id": f"u{i}", "version": 1}))
            for i in range(N_CREATE)
        ]
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO t (id, version, data) VALUES (?, ?, ?)", rows)
        conn.execute("COMMIT")
        raw.append(time.perf_counter() - t0)
        conn.close()
    return statistics.median(ours), statistics.median(raw)


def bench_query(tmp: Path, n_rows: int, repeats: int = 30) -> tuple[float, float, int]:
    path = tmp / "q.db"
    backend = SqlBackend(f"sqlite:///{path}", indexes={"users": ["group"]})
    for start in range(0, n_rows, 20_000):
        backend.execute_ops([create_op(start, min(20_000, n_rows - start), "q")], Meta())
    query = {
        "filter": {"op": "eq", "field": "group", "value": 7},
        "sort": [{"field": "age", "dir": "asc"}],
    }
    op = QueryOp(op_id="q", query=QuerySpec(resource="users", query=query))
    found = backend.execute_ops([op], Meta())[0][0].data.data
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        backend.execute_ops([op], Meta())
        times.append(time.perf_counter() - t0)
    assert backend.query_paths["sql"] > 0
    assert backend.query_paths["python"] == 0
    backend.close()

    conn = sqlite3.connect(path)
    raw_sql = (
        "SELECT data FROM atoma_rows WHERE resource = ? AND deleted = 0"
        " AND json_type(data, '$.\"group\"') IN ('integer','real')"
        " AND json_extract(data, '$.\"group\"') = ?"
        " ORDER BY json_extract(data, '$.\"age\"'), id"
    )
    raw_times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        got = [json.loads(d) for (d,) in conn.execute(raw_sql, ("users", 7))]
        raw_times.append(time.perf_counter() - t0)
    plan = " | ".join(r[-1] for r in conn.execute("EXPLAIN QUERY PLAN " + raw_sql, ("users", 7)))
    conn.close()
    assert sorted(e["id"] for e in got) == sorted(e["id"] for e in found)
    print(f"   raw plan: {plan}")
    return statistics.median(times), statistics.median(raw_times), len(found)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        ours, raw = bench_creates(tmp)
        print(
            f"10k creates, one op:   backend {ours * 1000:8.1f} ms   raw sqlite3 "
            f"{raw * 1000:8.1f} ms   ratio {ours / raw:5.2f}x (target <= 2x)"
        )
        ours_q, raw_q, hits = bench_query(tmp, args.rows)
        print(
            f"indexed eq + sort on {args.rows} rows ({hits} hits): backend "
            f"{ours_q * 1000:7.2f} ms   raw sqlite3 {raw_q * 1000:7.2f} ms   "
            f"ratio {ours_q / raw_q:5.2f}x"
        )


if __name__ == "__main__":
    main()
