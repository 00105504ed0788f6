"""Actor runtime costs, as ratios to baselines measured in the same run.

Run: .venv/bin/python -P bench/runtime.py [--quick] [--profile]   (about 50 s; --quick 12 s)
Prints medians of REPEATS repetitions; each repetition times the baseline and its subjects
back to back, and ratios are medians of the per-repetition ratios:
1. `peek` and a cached `get` vs a dict read under a lock (target <= 3x);
2. a direct write round trip (`store.update` on the local default client) vs three raw pykka
   asks to three trivial actors (target <= 4x);
3. reads (`peek`, `query_local`) from 4 threads, alone and while one thread writes without
   pause: throughput and per-read latency (reads must not queue behind writes); then the
   same reads while writes wait on a slow backend.
The write section also gives the CPU of all threads per write and the share of the terminal
(a `MemoryStorage` op run on its own). `--profile` adds cProfile tables of the write round
trip (caller thread and every actor thread) and of `peek` and cached `get`.
Imports the public API, pykka, the memory backend, and `core.storage` / `protocol` for the
terminal-alone figure; never asserts on time.
"""

from __future__ import annotations

import cProfile
import importlib.metadata
import io
import pstats
import random
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import pykka
from atoma_backend_memory import MemoryBackend

from atoma_actors import Client, create_client
from atoma_actors.core.storage import MemoryStorage
from atoma_actors.protocol import Meta, OpsRequest

__all__ = ["main"]

QUICK = "--quick" in sys.argv
REPEATS = 3 if QUICK else 5
ENTITIES = 1_000
READS = 20_000 if QUICK else 100_000
WRITES = 500 if QUICK else 2_000
WINDOW = 0.3 if QUICK else 1.0  # seconds per concurrent-read measurement
READERS = 4
SCHEMA = {"items": {"indexes": [{"field": "group", "type": "number"}]}}
QUERY = {"filter": {"op": "eq", "field": "group", "value": 3}, "page": {"limit": 20}}


def entity(i: int) -> dict[str, Any]:
    return {"id": f"e{i}", "name": f"item {i}", "group": i % 50, "tags": ["a", "b"], "n": i}


@dataclass(frozen=True, slots=True)
class Measured:
    wall: float  # seconds per operation, median over repetitions
    cpu: float  # process CPU seconds (all threads) per operation, median
    ratio: float  # median over repetitions of wall / the baseline's wall in that repetition


def paired(runs: dict[str, Callable[[], object]], per: int) -> dict[str, Measured]:
    """Time every run once per repetition, in order; the first is the baseline.

    Other processes share the machine: a burst of load then hits the baseline and the
    subjects of the same repetition alike, and the median of per-repetition ratios is much
    steadier than a ratio of two medians taken minutes apart."""
    walls: dict[str, list[float]] = {name: [] for name in runs}
    cpus: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(REPEATS):
        for name, run in runs.items():
            cpu, start = time.process_time(), time.perf_counter()
            run()
            walls[name].append((time.perf_counter() - start) / per)
            cpus[name].append((time.process_time() - cpu) / per)
    base = walls[next(iter(runs))]
    return {
        name: Measured(
            statistics.median(walls[name]),
            statistics.median(cpus[name]),
            statistics.median(w / b for w, b in zip(walls[name], base, strict=True)),
        )
        for name in runs
    }


def row(label: str, seconds: float, ratio: float | None = None, target: float | None = None) -> str:
    text = f"{label:<46}{seconds * 1e6:>9.2f} us"
    if ratio is not None:
        text += f"{ratio:>8.1f}x"
        if target is not None:
            text += f"   target <= {target:g}x: {'met' if ratio <= target else 'MISSED'}"
    return text


def filled_client() -> Client:
    client = create_client(schema=SCHEMA)
    client.store("items").create_many([entity(i) for i in range(ENTITIES)])
    return client


# -- 1. reads that need no I/O -------------------------------------------------------------
def bench_reads(client: Client) -> None:
    items = client.store("items")
    rng = random.Random(1)
    ids = [f"e{rng.randrange(ENTITIES)}" for _ in range(READS)]
    lock = threading.Lock()
    table = {e["id"]: e for e in (entity(i) for i in range(ENTITIES))}

    def dict_read(id_: str) -> Any:
        with lock:
            return table.get(id_)

    def dict_read_copy(id_: str) -> Any:
        with lock:
            value = table.get(id_)
        return None if value is None else {**value, "tags": list(value["tags"])}

    def loop(fn: Callable[[str], Any]) -> Callable[[], None]:
        def run() -> None:
            for id_ in ids:
                fn(id_)

        return run

    m = paired(
        {
            "base": loop(dict_read),
            "copy": loop(dict_read_copy),
            "peek": loop(items.peek),
            "get": loop(items.get),
            "nowait": loop(items.nowait.get),
        },
        READS,
    )
    print("1. Reads without I/O (per read; ratios: median of paired runs)")
    print(row("baseline: dict.get under a lock", m["base"].wall))
    print(row("  context: same + copy of the entity", m["copy"].wall, m["copy"].ratio))
    print(row("store.peek(id)", m["peek"].wall, m["peek"].ratio, 3))
    print(row("store.get(id), cache hit", m["get"].wall, m["get"].ratio, 3))
    print(row("store.nowait.get(id), cache hit", m["nowait"].wall, m["nowait"].ratio))


# -- 2. one write, end to end ----------------------------------------------------------------
class Echo(pykka.ThreadingActor):
    def on_receive(self, message: Any) -> Any:
        return message


def bench_write(client: Client) -> None:
    items = client.store("items")
    actors = [Echo.start() for _ in range(3)]
    try:

        def three_asks() -> None:
            for i in range(WRITES):
                for ref in actors:
                    ref.ask(i)

        counter = iter(range(10**9))

        def updates() -> None:
            for _ in range(WRITES):
                i = next(counter)
                items.update(f"e{i % ENTITIES}", {"n": i})

        m = paired({"asks": three_asks, "update": updates, "storage": storage_alone_runs()}, WRITES)
    finally:
        for ref in actors:
            ref.stop()
    asks, update, storage = m["asks"], m["update"], m["storage"]
    print("2. Write round trip (per write, local default client)")
    print(row("baseline: 3 pykka asks to 3 trivial actors", asks.wall))
    print(row("store.update(id, patch)", update.wall, update.ratio, 4))
    print(row("  CPU, all threads: 3 pykka asks", asks.cpu))
    print(row("  CPU, all threads: store.update", update.cpu, update.cpu / asks.cpu))
    share = f"{storage.wall / update.wall:>8.0%} of store.update"
    print(row("  of which the terminal (MemoryStorage op)", storage.wall) + share)


def storage_alone_runs() -> Callable[[], None]:
    """A run of WRITES update ops straight on a `MemoryStorage` (the local client's terminal),
    the ops built beforehand: the part of a write that is not the runtime's."""

    def op(action: str, item: dict[str, Any]) -> Any:
        item = {**item, "meta": {"idempotencyKey": uuid.uuid4().hex, "clientTimeMs": 0}}
        entries = [{"action": action, "item": item}]
        body = {"opId": "w", "kind": "write", "write": {"resource": "items", "entries": entries}}
        return OpsRequest.model_validate({"meta": {"v": 1}, "ops": [body]}).ops

    prepared = []
    for _ in range(REPEATS):
        storage = MemoryStorage()
        storage.execute_ops(op("create", {"id": "s", "value": entity(0)}), Meta())
        ops = [
            op("update", {"id": "s", "baseVersion": v, "value": {**entity(0), "n": v}})
            for v in range(1, WRITES + 1)
        ]
        prepared.append((storage, ops))

    def run() -> None:
        storage, ops = prepared.pop()
        meta = Meta()
        for o in ops:
            storage.execute_ops(o, meta)

    return run


# -- 3. reads while someone writes ---------------------------------------------------------
def read_load(read: Callable[[str], Any], *, readers: int = READERS) -> tuple[float, float, float]:
    """(reads per second over all readers, median and p99 latency of one read in seconds)."""
    stop = threading.Event()
    start_line = threading.Barrier(readers + 1)
    counts: list[int] = []
    latencies: list[float] = []
    lock = threading.Lock()

    def reader(seed: int) -> None:
        rng = random.Random(seed)
        ids = [f"e{rng.randrange(ENTITIES)}" for _ in range(1024)]
        mine: list[float] = []
        n = 0
        clock = time.perf_counter
        start_line.wait()
        while not stop.is_set():
            t0 = clock()
            read(ids[n & 1023])
            mine.append(clock() - t0)
            n += 1
        with lock:
            counts.append(n)
            latencies.extend(mine)

    threads = [threading.Thread(target=reader, args=(s,)) for s in range(readers)]
    for t in threads:
        t.start()
    start_line.wait()
    time.sleep(WINDOW)  # the measurement window; stop is what ends it
    stop.set()
    for t in threads:
        t.join()
    latencies.sort()
    return (
        sum(counts) / WINDOW,
        latencies[len(latencies) // 2],
        latencies[int(len(latencies) * 0.99)],
    )


class Writer:
    """One thread writing without pause (blocking `update`s, or up to `depth` in flight)."""

    def __init__(self, client: Client, depth: int = 1) -> None:
        self._items = client.store("items")
        self._depth = depth
        self._stop = threading.Event()
        self.writes = 0
        self._thread = threading.Thread(target=self._run)

    def __enter__(self) -> Writer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        i = 0
        window: list[Future[Any]] = []
        while not self._stop.is_set():
            i += 1
            # moves entities between groups, so the index changes too
            patch = {"n": i, "group": i % 50}
            if self._depth == 1:
                self._items.update(f"e{i % ENTITIES}", patch)
            else:
                window.append(self._items.nowait.update(f"e{i % ENTITIES}", patch))
                if len(window) >= self._depth:
                    window.pop(0).result()
            self.writes += 1
        for f in window:
            f.result()


Load = tuple[float, float, float, float]  # reads/s, p50 s, p99 s, writes/s


def compare_load(
    read: Callable[[str], Any], writer: Callable[[], Writer]
) -> tuple[Load, Load, float]:
    """Medians of the reads alone and with `writer`, alternated per repetition, and the median
    of the per-repetition throughput ratios (alone / with writer)."""
    alone: list[Load] = []
    busy: list[Load] = []
    for _ in range(REPEATS):
        alone.append((*read_load(read), 0.0))
        with writer() as w:
            before, start = w.writes, time.perf_counter()
            result = read_load(read)
            busy.append((*result, (w.writes - before) / (time.perf_counter() - start)))

    def median(runs: list[Load]) -> Load:
        return tuple(statistics.median(r[k] for r in runs) for k in range(4))  # type: ignore[return-value]

    ratio = statistics.median(a[0] / b[0] for a, b in zip(alone, busy, strict=True))
    return median(alone), median(busy), ratio


def print_loads(rows: list[tuple[str, Load]]) -> None:
    for label, m in rows:
        writes = f"{m[3]:>10.0f}" if m[3] else f"{'-':>10}"
        print(f"{label:<52}{m[0]:>10.0f}{m[1] * 1e6:>9.1f}{m[2] * 1e6:>9.1f}{writes}")


def bench_concurrent(client: Client) -> None:
    items = client.store("items")
    reads = {
        "peek": items.peek,
        "query_local (eq on index, 20 of 1000)": lambda _id: items.query_local(QUERY),
    }
    with Writer(client) as w:
        time.sleep(WINDOW)
    print(f"3. Reads from {READERS} threads, alone vs while one thread writes without pause")
    print(f"   (the writer alone, no readers: {w.writes / WINDOW:.0f} writes/s)")
    print(f"{'':<52}{'reads/s':>10}{'p50 us':>9}{'p99 us':>9}{'writes/s':>10}")
    for name, read in reads.items():
        alone, busy, ratio = compare_load(read, lambda: Writer(client))
        print_loads([(f"{name}, alone", alone), (f"{name}, with writer", busy)])
        print(f"{'  read throughput ratio, alone / with writer':<52}{ratio:>10.2f}")


def bench_slow_backend() -> None:
    """Writes that wait 20 ms on the backend, 16 in flight: a read that queued behind them
    would take tens of ms."""
    server = MemoryBackend(seed=1)
    with create_client(server.backend, schema=SCHEMA) as client:
        items = client.store("items")
        items.create_many([entity(i) for i in range(ENTITIES)])
        server.faults.configure(latency=0.02)
        alone, busy, ratio = compare_load(items.peek, lambda: Writer(client, depth=16))
        server.heal()
    print("   peek while writes wait 20 ms each on a memory backend (16 in flight)")
    print_loads([("peek, alone", alone), ("peek, with slow writes", busy)])
    print(f"{'  read throughput ratio, alone / with writer':<52}{ratio:>10.2f}")


# -- profile ---------------------------------------------------------------------------------
def profiled_actor_threads() -> tuple[list[cProfile.Profile], Callable[[], None]]:
    """Profile every actor started from now on, each on its own thread (cProfile sees only
    the thread that enabled it). Returns the profiles and an undo function."""
    profiles: list[cProfile.Profile] = []
    original = pykka.Actor._actor_loop

    def loop(self: pykka.Actor) -> None:
        prof = cProfile.Profile()
        profiles.append(prof)
        prof.runcall(original, self)

    pykka.Actor._actor_loop = loop  # type: ignore[method-assign]
    return profiles, lambda: setattr(pykka.Actor, "_actor_loop", original)


def print_profile(label: str, profiles: list[cProfile.Profile], top: int = 25) -> None:
    """Top functions by own time. An actor thread idles in `lock.acquire` until its inbox
    has a message, so that line is mostly waiting, not work."""
    out = io.StringIO()
    stats = pstats.Stats(*profiles, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    lines = out.getvalue().splitlines()
    first = next(i for i, line in enumerate(lines) if "ncalls" in line)
    print(f"\n-- cProfile: {label}, by own time")
    print("\n".join(lines[first : first + top + 1]))
    out.seek(0)
    out.truncate()
    stats.sort_stats("cumulative").print_stats("on_receive")
    lines = [line for line in out.getvalue().splitlines() if "on_receive" in line]
    if lines:
        print(f"-- {label}: time inside each actor's on_receive (cumulative)")
        print("\n".join(lines))


def profile() -> None:
    profiles, undo = profiled_actor_threads()
    try:
        client = create_client(schema=SCHEMA)  # small, so setup does not blur the profile
        items = client.store("items")  # starts the StoreActor
    finally:
        undo()
    try:
        items.create_many([entity(i) for i in range(10)])
        caller = cProfile.Profile()
        caller.runcall(lambda: [items.update(f"e{i % 10}", {"n": -i}) for i in range(WRITES)])
        reads = []
        for label, read in (("store.peek", items.peek), ("store.get, cache hit", items.get)):
            prof = cProfile.Profile()
            prof.runcall(lambda read=read: [read(f"e{i % 10}") for i in range(READS)])
            reads.append((f"{label} x {READS}", prof))
    finally:
        client.close()  # stops the actor threads, which completes their profiles
    print_profile(f"store.update x {WRITES}, caller thread", [caller], top=12)
    print_profile(f"store.update x {WRITES}, all actor threads", profiles)
    for label, prof in reads:
        print_profile(label, [prof], top=12)


def main() -> int:
    versions = f"python {sys.version.split()[0]}, pykka {importlib.metadata.version('pykka')}"
    print(f"{versions}, median of {REPEATS} runs, switch interval {sys.getswitchinterval()}s")
    client = filled_client()
    try:
        bench_reads(client)
        bench_write(client)
        bench_concurrent(client)
        bench_slow_backend()
    finally:
        client.close()
    if "--profile" in sys.argv:
        profile()
    return 0


if __name__ == "__main__":
    sys.exit(main())
