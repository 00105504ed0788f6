"""HTTP path benchmark: N creates through atoma-server, one request per write vs batched.

Runs a real uvicorn server on a loopback port in this process (over SqlBackend on a temporary
SQLite file, or MemoryStorage with --storage memory) and writes N entities four ways, each in
JSON and msgpack:

  raw/1      HttpBackend.execute_ops, one create per request, one thread (the baseline)
  raw/100    HttpBackend.execute_ops, 100 creates per write op, one thread
  client/direct   create_client(strategy="direct"), N non-blocking creates from one thread
  client/queue    create_client(strategy="queue"),  N non-blocking creates from one thread

Prints requests sent, seconds, writes/s and the throughput ratio against raw/1 JSON measured
in the same run. Figures, never asserts. Usage: python bench/http.py [--n 10000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from atoma_backend_http import HttpBackend
from atoma_server import Limits, create_app
from atoma_server.testing import ServerThread

from atoma_actors import create_client
from atoma_actors.protocol import CreateEntry, CreateItem, ItemMeta, Meta, WriteOp, WriteSpec


def entries(start: int, count: int, run: str) -> list[CreateEntry]:
    now = int(time.time() * 1000)
    return [
        CreateEntry(
            item=CreateItem(
                id=f"{run}-{i}",
                value={"name": f"user {i}", "n": i, "tags": ["a", "b"]},
                meta=ItemMeta(idempotency_key=uuid.uuid4().hex, client_time_ms=now),
            )
        )
        for i in range(start, start + count)
    ]


def raw(url: str, fmt: str, n: int, per_request: int) -> tuple[float, int]:
    run = uuid.uuid4().hex[:8]
    with HttpBackend(url, format=fmt) as backend:
        started = time.perf_counter()
        for start in range(0, n, per_request):
            op = WriteOp(
                op_id="w",
                write=WriteSpec(
                    resource="bench", entries=entries(start, min(per_request, n - start), run)
                ),
            )
            results, _ = backend.execute_ops([op], Meta())
            assert all(item.ok for item in results[0].data.results)
        return time.perf_counter() - started, backend.requests_sent


def client(url: str, fmt: str, n: int, strategy: str) -> tuple[float, int]:
    run = uuid.uuid4().hex[:8]
    backend = HttpBackend(url, format=fmt)
    with create_client(backend.backend, strategy=strategy, timeout=120) as c:
        users = c.store("bench")
        started = time.perf_counter()
        futures = [
            users.nowait.create(
                {"id": f"{run}-{i}", "name": f"user {i}", "n": i, "tags": ["a", "b"]}
            )
            for i in range(n)
        ]
        c.flush()
        for future in futures:
            future.result(timeout=120)
        elapsed = time.perf_counter() - started
    backend.close()
    return elapsed, backend.requests_sent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--storage", choices=["sql", "memory"], default="sql")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        if args.storage == "sql":
            from atoma_backend_sql import SqlBackend

            storage: Any = SqlBackend(f"sqlite:///{Path(tmp) / 'bench.db'}", synchronous="NORMAL")
        else:
            from atoma_actors.core.storage import MemoryStorage

            storage = MemoryStorage()
        server = ServerThread(
            create_app(storage, limits=Limits(max_body_bytes=16 << 20)), timeout_graceful_shutdown=2
        ).start()
        try:
            rows = []
            for fmt in ("json", "msgpack"):
                rows.append((f"raw/1 {fmt}", *raw(server.url, fmt, args.n, 1)))
                rows.append((f"raw/100 {fmt}", *raw(server.url, fmt, args.n, 100)))
                rows.append((f"client/direct {fmt}", *client(server.url, fmt, args.n, "direct")))
                rows.append((f"client/queue {fmt}", *client(server.url, fmt, args.n, "queue")))
        finally:
            server.stop()
            close = getattr(storage, "close", None)
            if close:
                close()

    base = args.n / rows[0][1]
    print(f"{args.n} creates over HTTP to atoma-server ({args.storage} storage), one thread")
    print(f"{'mode':<22}{'requests':>10}{'seconds':>10}{'writes/s':>12}{'vs raw/1 json':>15}")
    for name, seconds, requests in rows:
        rate = args.n / seconds
        print(f"{name:<22}{requests:>10}{seconds:>10.2f}{rate:>12.0f}{rate / base:>14.1f}x")


if __name__ == "__main__":
    main()
