"""`make demo`: threads sharing one store over a simulated server that crashes, and recovers.

1. Four threads write into one store through one client, over the in-memory simulated server
   (`atoma_backend_memory.MemoryBackend`); half way through, the server crashes once.
2. Up close: an optimistic write is visible at once, then rolled back when its call crashes,
   while a write to another entity made meanwhile survives.
3. The supervisor restarts the crashed backend actor; a summary checks that the client holds
   exactly what the server holds.

Runs in a few seconds, needs no input and no server; exits 1 if a check fails.
Imports only the public API and the memory backend.
"""

from __future__ import annotations

import sys
import threading
from collections import Counter
from typing import Any

from atoma_backend_memory import MemoryBackend

from atoma_actors import AtomaError, BackendUnavailable, Client, Store, create_client

__all__ = ["main"]

THREADS = 4
WRITES_PER_THREAD = 40
WATCHED = (
    "backend_failed",
    "backend_restarted",
    "circuit_opened",
    "circuit_closed",
    "change_rolled_back",
)


class Tally:
    """What the demo saw, counted from several threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.acked = 0  # acknowledged writes
        self.created: list[str] = []  # ids of acknowledged creates
        self.failed: Counter[str] = Counter()  # error type -> count
        self.failed_ids: list[str] = []  # ids of creates that failed
        self.untyped: list[BaseException] = []  # errors that are not AtomaError: bugs
        self.events: Counter[str] = Counter()
        self.rolled_back = 0  # entities whose optimistic change was undone
        self.restarted = threading.Event()

    def ack(self, writes: int = 1, created: str | None = None) -> None:
        with self.lock:
            self.acked += writes
            if created is not None:
                self.created.append(created)

    def fail(self, exc: Exception) -> None:
        with self.lock:
            self.failed[type(exc).__name__] += 1


def on_event(tally: Tally, event: Any) -> None:
    """Runs on the event bus's thread, never on the thread that caused the event."""
    with tally.lock:
        tally.events[event.name] += 1
        if event.name == "change_rolled_back":
            tally.rolled_back += len(event.payload["ids"])
    if event.name == "change_rolled_back":
        return  # counted, too many to print
    details = ", ".join(f"{k}={v}" for k, v in event.payload.items() if k != "error")
    print(f"    [event] {event.name}: {details}")
    if event.name == "backend_restarted":
        tally.restarted.set()


def worker(
    tasks: Store, board: Store, number: int, tally: Tally, halfway: threading.Barrier
) -> None:
    for i in range(WRITES_PER_THREAD):
        if i == WRITES_PER_THREAD // 2:
            halfway.wait()  # the main thread injects the crash here
        task_id = f"t{number}-{i}"
        try:
            tasks.create({"id": task_id, "owner": number, "step": i})
            tally.ack(created=task_id)
            # a shared entity, patched by every thread (each its own field)
            board.update("board", {f"thread{number}": i})
            tally.ack()
        except AtomaError as exc:  # the library fails with typed errors only
            tally.fail(exc)
            if tasks.peek(task_id) is None:
                with tally.lock:
                    tally.failed_ids.append(task_id)
        except Exception as exc:
            with tally.lock:
                tally.untyped.append(exc)


def act_threads(client: Client, server: MemoryBackend, tally: Tally) -> None:
    print(f"1. {THREADS} threads x {WRITES_PER_THREAD} creates (+ a shared patch each) ...")
    tasks, board = client.store("tasks"), client.store("boards")
    board.create({"id": "board"})
    halfway = threading.Barrier(THREADS + 1)
    threads = [
        threading.Thread(target=worker, args=(tasks, board, n, tally, halfway))
        for n in range(THREADS)
    ]
    for t in threads:
        t.start()
    halfway.wait(timeout=10)
    print("   ... half way: the server will crash on its next call")
    server.faults.crash_next(1)
    for t in threads:
        t.join(timeout=30)
    print(f"   done: {tally.acked} writes acknowledged, {sum(tally.failed.values())} failed")
    print(f"   board as this client sees it: {board.peek('board')}")
    tally.restarted.wait(timeout=5)  # let the supervisor bring the crashed actor back first
    tally.restarted.clear()


def act_rollback(client: Client, server: MemoryBackend, tally: Tally) -> bool:
    print("2. Rollback up close")
    accounts = client.store("accounts")
    # with pool_size=2, "alice" and "dave" are served by different backend actors
    accounts.create_many([{"id": "alice", "balance": 100}, {"id": "dave", "balance": 5}])
    tally.ack(2)
    server.faults.hang(calls=1)  # the next call blocks, then crashes having done nothing
    pending = accounts.nowait.update("alice", {"balance": 0})
    server.faults.wait_hanging(1, timeout=5)
    print(f"   alice, optimistic, before the server answers: {accounts.peek('alice')}")
    dave = accounts.update("dave", {"balance": 50})
    tally.ack()
    print(f"   meanwhile dave's write is acknowledged:        {dave}")
    server.release()
    try:
        pending.result(timeout=5)
        print("   !! alice's write should have failed")
        return False
    except BackendUnavailable as exc:
        print(f"   alice's write failed: {type(exc).__name__}: {exc}")
        tally.fail(exc)
    alice, dave = accounts.peek("alice"), accounts.peek("dave")
    print(f"   alice after the rollback: {alice}")
    print(f"   dave survives:            {dave}")
    return alice["balance"] == 100 and dave["balance"] == 50


def main() -> int:
    server = MemoryBackend(seed=7)
    tally = Tally()
    with create_client(server.backend, pool_size=2, timeout=5) as client:
        for name in WATCHED:
            client.events.on(name, lambda event: on_event(tally, event))

        act_threads(client, server, tally)
        rollback_ok = act_rollback(client, server, tally)
        restarted = tally.restarted.wait(timeout=5)  # the actor that crashed in act 2
        print("3. After the restart")
        after = client.store("accounts").update("alice", {"note": "back"})
        tally.ack()
        print(f"   alice's next write is acknowledged: {after}")
        client.settle(timeout=5)

        mismatched = [
            name
            for name in ("tasks", "boards", "accounts")
            if {e["id"]: e for e in client.store(name).query_local().data} != server.snapshot(name)
        ]
        held = server.snapshot("tasks")
        lost = [i for i in tally.created if i not in held]
        leaked = [i for i in tally.failed_ids if i in held]

    with tally.lock:
        failed, events, rolled_back = sum(tally.failed.values()), tally.events, tally.rolled_back
    checks = {
        "acknowledged creates all on the server": not lost,
        "failed creates nowhere": not leaked,
        "only typed errors": not tally.untyped,
        "rollback kept the concurrent write": rollback_ok,
        "backend actor restarted": restarted,
        "client store == server (values, versions)": not mismatched,
    }
    print("\nSummary")
    print(f"  writes acknowledged  {tally.acked}")
    print(f"  writes failed        {failed}  {dict(tally.failed)}")
    print(f"  entities rolled back {rolled_back}")
    print(f"  backend crashes      {events['backend_failed']}")
    print(f"  restarts seen        {events['backend_restarted']}")
    for name, ok in checks.items():
        print(f"  [{'ok' if ok else 'FAILED'}] {name}")
    for exc in tally.untyped:
        print(f"  untyped error: {exc!r}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
