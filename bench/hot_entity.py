"""Draining many queued updates to one entity: the time per update must stay flat.

Run: .venv/bin/python -P bench/hot_entity.py [--sizes 250 1000 4000 8000]
For each size N, N `store.nowait.update` calls to one entity through the queue strategy over a
`MemoryBackend`, then `client.flush()` and every future awaited. Prints the time per update and
its ratio to the smallest size (flat means ~1x; a replay of every pending change on each apply
and confirm made it grow with N). Imports the public API and the memory backend; never asserts.
"""

from __future__ import annotations

import argparse
import time

from atoma_backend_memory import MemoryBackend

from atoma_actors import create_client

__all__ = ["main"]


def drain(n: int) -> float:
    memory = MemoryBackend()
    with create_client(memory.backend, strategy="queue", timeout=120) as client:
        store = client.store("items")
        store.create({"id": "hot", "n": 0})
        start = time.perf_counter()
        futures = [store.nowait.update("hot", {"n": i}) for i in range(n)]
        client.flush(timeout=120)
        for future in futures:
            future.result(timeout=120)
        elapsed = time.perf_counter() - start
        assert store.peek("hot") == {"id": "hot", "n": n - 1, "version": n + 1}
    return elapsed / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[250, 1000, 4000, 8000])
    args = parser.parse_args()
    base = None
    for n in args.sizes:
        per = drain(n)
        base = base or per
        ratio = per / base
        print(f"{n:>6} pending updates to one entity: {per * 1e6:8.1f} us/update  {ratio:5.2f}x")


if __name__ == "__main__":
    main()
