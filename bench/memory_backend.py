"""Memory storage and backend costs, as ratios to a dict under a lock measured in the same run.

Run: .venv/bin/python bench/memory_backend.py [N]
Prints per-write cost of MemoryStorage (one entry per call, and 100 entries per call), the
MemoryBackend wrapper with faults off, changes.pull, and a query, each vs the baseline.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable

from atoma_backend_memory import MemoryBackend

from atoma_actors.core.storage import MemoryStorage
from atoma_actors.protocol import Meta, OpsRequest

N = int(sys.argv[1]) if len(sys.argv) > 1 else 5_000
REPEATS = 5  # the best of several runs: other processes share the machine
META = Meta()


def upsert_entry(i: int, id_: str) -> dict:
    return {
        "action": "upsert",
        "item": {
            "id": id_,
            "value": {"n": i, "name": f"user {i}"},
            "meta": {"idempotencyKey": f"k{i}", "clientTimeMs": 0},
        },
        "options": {"upsert": {"conflict": "lww", "apply": "merge"}},
    }


def write_ops(count: int, per_op: int) -> list:
    """Pre-built ops (building models is the caller's cost, not the storage's)."""
    ops = []
    for start in range(0, count, per_op):
        entries = [upsert_entry(i, f"id{i % 1000}") for i in range(start, start + per_op)]
        op = {"opId": "w", "kind": "write", "write": {"resource": "r", "entries": entries}}
        ops.append(OpsRequest.model_validate({"meta": {"v": 1}, "ops": [op]}).ops)
    return ops


def timed(fn: Callable[[], object], setup: Callable[[], object] | None = None) -> float:
    best = float("inf")
    for _ in range(REPEATS):
        if setup is not None:
            setup()
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def baseline() -> float:
    lock = threading.Lock()
    rows: dict[str, dict] = {}

    def run() -> None:
        for i in range(N):
            id_ = f"id{i % 1000}"
            with lock:
                old = rows.get(id_)
                version = 1 if old is None else old["version"] + 1
                rows[id_] = {"n": i, "name": f"user {i}", "id": id_, "version": version}

    return timed(run) / N


def per_write(make: Callable[[], object], ops: list, entries: int) -> float:
    """Seconds per entry; a fresh client per run, so no write is an idempotent replay."""
    box: list[object] = []

    def fresh() -> None:
        box[:] = [make()]

    return timed(lambda: [box[0].execute_ops(o, META) for o in ops], fresh) / entries


def main() -> None:
    base = baseline()
    single = write_ops(N, 1)
    batched = write_ops(N, 100)
    storage_1 = per_write(MemoryStorage, single, N)
    storage_100 = per_write(MemoryStorage, batched, N)
    backend_1 = per_write(lambda: MemoryBackend(seed=1), single, N)
    backend = MemoryBackend(seed=1)
    for o in single:
        backend.execute_ops(o, META)

    pull = OpsRequest.model_validate(
        {"meta": {"v": 1}, "ops": [{"opId": "p", "kind": "changes.pull", "pull": {"limit": 100}}]}
    ).ops
    query = OpsRequest.model_validate(
        {
            "meta": {"v": 1},
            "ops": [
                {
                    "opId": "q",
                    "kind": "query",
                    "query": {
                        "resource": "r",
                        "query": {
                            "filter": {"op": "gte", "field": "n", "value": N - 500},
                            "page": {"mode": "offset", "limit": 20},
                        },
                    },
                }
            ],
        }
    ).ops
    reps = 200
    pull_t = timed(lambda: [backend.execute_ops(pull, META) for _ in range(reps)]) / reps
    query_t = timed(lambda: [backend.execute_ops(query, META) for _ in range(reps)]) / reps

    print(f"N={N} writes over 1000 ids")
    print(f"baseline dict+lock write          {base * 1e6:8.2f} us")
    print(f"MemoryStorage, 1 entry per call   {storage_1 * 1e6:8.2f} us  {storage_1 / base:6.1f}x")
    print(
        f"MemoryStorage, 100 entries/call   {storage_100 * 1e6:8.2f} us  {storage_100 / base:6.1f}x"
    )
    print(f"MemoryBackend (faults off), 1/call {backend_1 * 1e6:7.2f} us  {backend_1 / base:6.1f}x")
    print(f"  backend wrapper vs storage      {backend_1 / storage_1:8.2f}x")
    print(f"changes.pull, page of 100         {pull_t * 1e6:8.2f} us  {pull_t / base:6.1f}x")
    print(f"query over 1000 rows, page of 20  {query_t * 1e6:8.2f} us  {query_t / base:6.1f}x")


if __name__ == "__main__":
    main()
