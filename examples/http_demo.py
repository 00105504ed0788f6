"""`make demo-http`: a real client/server path on this machine.

Starts the ops server (Starlette + uvicorn) in-process on 127.0.0.1 and a free port, over a
SQLite file in a temporary folder; four worker threads share one client that talks to it over
HTTP (msgpack bodies, queue strategy); a second client sees the result through the server.
Ends on its own, in a few seconds; exits 1 if the final check fails.

To run the server on its own instead:  atoma-server --db sqlite:///data.db --port 8000
"""

from __future__ import annotations

import sys
import tempfile
import threading
import time
from pathlib import Path

from atoma_backend_http import HttpBackend
from atoma_backend_sql import SqlBackend
from atoma_server import create_app
from atoma_server.testing import ServerThread

from atoma_actors import create_client

WORKERS = 4
JOBS_PER_WORKER = 250


def worker(jobs, name: str, done: list[int]) -> None:
    futures = [
        jobs.nowait.create({"id": f"{name}-{n}", "owner": name, "n": n})
        for n in range(JOBS_PER_WORKER)
    ]
    for n in range(0, JOBS_PER_WORKER, 5):
        futures.append(jobs.nowait.update(f"{name}-{n}", {"state": "done"}))
    done.append(sum(1 for f in futures if f.result(timeout=30)))


def main() -> int:
    with tempfile.TemporaryDirectory() as folder:
        storage = SqlBackend(f"sqlite:///{Path(folder) / 'demo.db'}")
        with ServerThread(create_app(storage, notify=storage)) as server:
            print(f"ops server on {server.url} over {Path(folder) / 'demo.db'}")
            http = HttpBackend(server.url, format="msgpack")
            started = time.perf_counter()
            done: list[int] = []
            with create_client(http.backend, strategy="queue") as client:
                jobs = client.store("jobs")
                threads = [
                    threading.Thread(target=worker, args=(jobs, f"w{i}", done))
                    for i in range(WORKERS)
                ]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join(timeout=60)
                client.flush()
            elapsed = time.perf_counter() - started
            print(f"{sum(done)} writes acknowledged by {WORKERS} threads in {elapsed:.2f}s")

            with create_client(HttpBackend(server.url).backend) as reader:
                page = reader.store("jobs").query(
                    {
                        "filter": {"op": "eq", "field": "state", "value": "done"},
                        "page": {"mode": "offset", "limit": 3, "includeTotal": True},
                    }
                )
                print(
                    f"another client sees {page.page_info.total} finished jobs, e.g. "
                    f"{[e['id'] for e in page.data]} (source: {page.source})"
                )
            http.close()
        storage.close()
    expected = WORKERS * JOBS_PER_WORKER // 5
    ok = page.page_info.total == expected and sum(done) == WORKERS * JOBS_PER_WORKER * 6 // 5
    print("check:", "ok" if ok else f"FAILED (expected {expected} finished jobs)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
