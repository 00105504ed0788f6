"""Queue strategy vs direct: throughput, backend calls and p99 acknowledged-write latency.

A memory backend costing 1 ms per `execute_ops` call; 4 threads create entities through the
non-blocking API (`store.nowait.create`), so each thread keeps many writes in flight. The
direct baseline is measured in the same run on fewer writes (each one is a 1 ms call, so 20k
would take over 20 s); throughput is per second either way. Prints ratios, never asserts.

    .venv/bin/python bench/queue.py [--writes 20000] [--direct-writes 2000] [--threads 4]
"""

from __future__ import annotations

import argparse
import threading
import time
from concurrent.futures import Future
from concurrent.futures import wait as wait_all
from typing import Any

from atoma_backend_memory import MemoryBackend

from atoma_actors import create_client

__all__ = ["run"]


def run(
    strategy: str, writes: int, threads: int, queue: dict[str, Any], window: int
) -> dict[str, float]:
    """`window`: writes each thread keeps in flight at most (latency is then the latency of a
    write under that load, not of the last write of a burst)."""
    memory = MemoryBackend(seed=1, cost_per_call=0.001)
    latencies: list[float] = []
    lock = threading.Lock()
    with create_client(memory.backend, strategy=strategy, queue=queue, timeout=120) as client:
        store = client.store("items")
        per_thread = writes // threads
        futures: list[list[Future[Any]]] = [[] for _ in range(threads)]
        start_line = threading.Barrier(threads + 1)

        def work(t: int) -> None:
            start_line.wait()
            mine = futures[t]
            room = threading.BoundedSemaphore(window)
            for i in range(per_thread):
                room.acquire()
                sent = time.perf_counter()
                future = store.nowait.create({"id": f"{t}-{i}", "n": i})

                def done(_: Future[Any], sent: float = sent) -> None:
                    took = time.perf_counter() - sent
                    with lock:
                        latencies.append(took)
                    room.release()

                future.add_done_callback(done)
                mine.append(future)

        workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
        for w in workers:
            w.start()
        start_line.wait()
        began = time.perf_counter()
        for w in workers:
            w.join()
        everything = [f for fs in futures for f in fs]
        wait_all(everything, timeout=300)
        elapsed = time.perf_counter() - began
        failed = sum(1 for f in everything if f.exception() is not None)
        calls = memory.stats.calls
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99) - 1] if latencies else float("nan")
    p50 = latencies[len(latencies) // 2] if latencies else float("nan")
    total = per_thread * threads
    return {
        "writes": total,
        "seconds": elapsed,
        "throughput": total / elapsed,
        "calls": calls,
        "entries_per_call": total / max(calls, 1),
        "p50_ms": p50 * 1000,
        "p99_ms": p99 * 1000,
        "failed": failed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=20_000)
    parser.add_argument("--direct-writes", type=int, default=2_000)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--max-batch", type=int, default=500)
    parser.add_argument("--max-delay", type=float, default=0.002)
    parser.add_argument("--window", type=int, default=500, help="writes in flight per thread")
    args = parser.parse_args()
    queue = {"max_batch": args.max_batch, "max_delay": args.max_delay, "max_queue": 50_000}

    direct = run("direct", args.direct_writes, args.threads, {}, args.window)
    queued = run("queue", args.writes, args.threads, queue, args.window)
    for name, r in (("direct", direct), ("queue", queued)):
        print(
            f"{name:6} writes={r['writes']:6d} {r['seconds']:7.2f}s "
            f"{r['throughput']:9.0f} writes/s  calls={r['calls']:6d} "
            f"({r['entries_per_call']:.1f} entries/call)  "
            f"p50={r['p50_ms']:.1f}ms p99={r['p99_ms']:.1f}ms failed={r['failed']}"
        )
    print(f"queue/direct throughput: {queued['throughput'] / direct['throughput']:.1f}x")
    print(
        f"backend calls per 1000 writes: direct {1000 * direct['calls'] / direct['writes']:.0f}, "
        f"queue {1000 * queued['calls'] / queued['writes']:.1f}"
    )
    print(f"queue options: {queue}; window {args.window} writes in flight per thread")


if __name__ == "__main__":
    main()
