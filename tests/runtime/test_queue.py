"""The queue strategy: batching (size, delay, on demand), per-entity order, rollback of exactly
the failed entries, backpressure, retries applied once, freezegun, and close draining."""

from __future__ import annotations

import threading
import zlib
from concurrent.futures import Future
from concurrent.futures import wait as wait_all

import pykka
import pytest
from atoma_backend_memory import MemoryBackend

from atoma_actors import (
    BackendUnavailable,
    ClientClosed,
    ConflictError,
    LimitsError,
    ValidationError,
    create_client,
)
from atoma_actors.runtime.strategies.queue import QueueGate, QueueOptions
from atoma_actors.testing.clock import MockClock

WAIT = 10.0  # bound on every wait for something that must happen


def queue_client(memory, clock=None, supervisor=None, **queue):
    return create_client(
        memory.backend,
        strategy="queue",
        queue=queue,
        clock=clock,
        supervisor=supervisor,
        timeout=10,
    )


def results(futures: list[Future]) -> list:
    return [f.result(timeout=WAIT) for f in futures]


def wait_until(predicate, timeout: float = WAIT) -> bool:
    """Poll `predicate` (state owned by another thread) until true or `timeout` passes."""
    tick = threading.Event()
    for _ in range(int(timeout / 0.002)):
        if predicate():
            return True
        tick.wait(0.002)
    return predicate()


def queued(client) -> int:
    """Entries the queue strategy holds (asked through its mailbox)."""
    return client._strategies["queue"].proxy().held().get(timeout=WAIT)


def optimistic_seen(client, count: int) -> threading.Event:
    """Set once `count` ids were applied optimistically (the StoreActor works asynchronously)."""
    seen: list[str] = []
    event = threading.Event()

    def on(e) -> None:
        seen.extend(e.payload["ids"] if hasattr(e, "payload") else e.ids)
        if len(seen) >= count:
            event.set()

    client.events.on("change_optimistic", on)
    return event


# -- batching -------------------------------------------------------------------------


def test_size_triggers_a_batch_and_the_rest_waits_for_flush(memory):
    clock = MockClock()  # never advanced: the delay timer cannot fire
    with queue_client(memory, clock, max_batch=10, max_delay=5.0) as c:
        users = c.store("users")
        futures = [users.nowait.create({"id": f"u{i:02}", "n": i}) for i in range(25)]
        done = results(futures[:20])  # two full batches
        assert [e["id"] for e in done] == [f"u{i:02}" for i in range(20)]
        assert memory.stats.calls == 2
        assert memory.stats.entries == 20
        assert not any(f.done() for f in futures[20:])
        assert users.peek("u24") == {"id": "u24", "n": 24, "version": 1}  # optimistic
        assert "u24" not in memory.snapshot("users")
        users.flush()
        assert all(f.done() for f in futures)
        assert memory.stats.calls == 3
        assert len(memory.snapshot("users")) == 25


def test_delay_sends_after_max_delay_on_the_clients_clock(memory):
    clock = MockClock()
    with queue_client(memory, clock, max_batch=1000, max_delay=0.5) as c:
        users = c.store("users")
        seen = optimistic_seen(c, 3)
        futures = [users.nowait.create({"id": f"u{i}"}) for i in range(3)]
        assert seen.wait(WAIT)
        assert wait_until(lambda: queued(c) == 3)  # the timer starts when the queue has them
        # readers see the writes before anything is sent
        assert [users.peek(f"u{i}")["version"] for i in range(3)] == [1, 1, 1]
        clock.advance(0.4)
        finished, _ = wait_all(futures, timeout=0.2)
        assert not finished and memory.stats.calls == 0
        clock.advance(0.2)
        c.settle(timeout=WAIT)
        assert all(f.result()["version"] == 1 for f in futures)
        assert memory.stats.calls == 1
        assert sorted(memory.snapshot("users")) == ["u0", "u1", "u2"]


def test_client_flush_sends_every_lane(memory):
    clock = MockClock()
    with queue_client(memory, clock, max_batch=1000, max_delay=60) as c:
        futures = [c.store(name).nowait.create({"id": "x"}) for name in ("a", "b", "c")]
        c.flush()
        assert [f.result(0)["id"] for f in futures] == ["x", "x", "x"]
        assert memory.stats.calls == 3  # one per lane


def test_strategy_per_store_and_per_call(memory):
    clock = MockClock()
    with create_client(
        memory.backend, clock=clock, queue={"max_delay": 60, "max_batch": 1000}
    ) as c:
        direct = c.store("direct")
        queued = c.store("queued", strategy="queue")
        direct.create({"id": "d1"})  # direct by default: sent at once
        assert memory.stats.calls == 1
        a = queued.nowait.create({"id": "q1"})
        b = direct.nowait.create({"id": "d2"}, strategy="queue")
        c.flush()
        assert a.result(0)["id"] == "q1" and b.result(0)["id"] == "d2"
        assert memory.stats.calls == 3


def test_bad_queue_options_are_validation_errors():
    with pytest.raises(ValidationError):
        QueueOptions.from_mapping({"max_batch": 0})
    with pytest.raises(ValidationError):
        QueueOptions.from_mapping({"batch": 10})
    with pytest.raises(ValidationError):
        QueueOptions.from_mapping({"backpressure": "drop"})


# -- order ----------------------------------------------------------------------------


@pytest.mark.parametrize("error_rate", [0.0, 0.2])
def test_per_entity_order_under_eight_threads(error_rate):
    """Each thread streams updates to its own entity and increments a shared counter, all
    without waiting: any reordering would surface as a version conflict or a lost increment."""
    memory = MemoryBackend(seed=3, cost_per_call=0.0005)
    memory.faults.configure(error_rate=error_rate)
    threads, per_thread = 8, 40
    with create_client(
        memory.backend,
        strategy="queue",
        pool_size=4,
        timeout=30,
        queue={"max_batch": 32, "max_delay": 0.001, "retries": 20, "retry_backoff": 0.0},
    ) as c:
        docs = c.store("docs")
        docs.create({"id": "counter", "n": 0})
        # Created first and waited for: an update of an id the client has not seen yet
        # fetches it before planning, which is no ordering test of the queue.
        docs.create_many([{"id": f"t{t}", "seq": -1} for t in range(threads)])
        futures: list[list[Future]] = [[] for _ in range(threads)]
        errors: list[BaseException] = []

        def work(t: int) -> None:
            try:
                mine = futures[t]
                for i in range(per_thread):
                    mine.append(docs.nowait.update(f"t{t}", {"seq": i}))
                    mine.append(docs.nowait.update("counter", lambda e: {**e, "n": e["n"] + 1}))
            except BaseException as exc:
                errors.append(exc)

        workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(WAIT)
        assert not errors
        for t in range(threads):
            outs = results(futures[t])
            seqs = [o["seq"] for o in outs if o["id"] == f"t{t}"]
            assert seqs == list(range(per_thread))
            assert [o["version"] for o in outs if o["id"] == f"t{t}"] == list(
                range(2, per_thread + 2)
            )
        c.flush()
        server = memory.snapshot("docs")
        assert server["counter"]["n"] == threads * per_thread
        assert server["counter"]["version"] == threads * per_thread + 1
        for t in range(threads):
            assert server[f"t{t}"]["seq"] == per_thread - 1
            assert server[f"t{t}"]["version"] == per_thread + 1
            assert docs.peek(f"t{t}") == server[f"t{t}"] | {"id": f"t{t}"}
        if error_rate:
            assert memory.faults.stats.errors > 0
            assert c._strategies["queue"].proxy().stats.get()["retries"] > 0


# -- failure --------------------------------------------------------------------------


def test_failed_batch_rolls_back_exactly_its_entries(memory, fast_policy):
    clock = MockClock()
    with queue_client(memory, clock, fast_policy, max_batch=2, max_delay=60, retries=0) as c:
        users = c.store("users")
        restarted = threading.Event()
        c.events.on("backend_restarted", lambda e: restarted.set())
        users.create({"id": "kept", "n": 0}, strategy="direct")
        memory.faults.hang(calls=1)
        first = [users.nowait.create({"id": "a"}), users.nowait.update("kept", {"n": 1})]
        assert memory.faults.wait_hanging(1, timeout=WAIT)
        later = users.nowait.create({"id": "b"})  # the lane keeps filling meanwhile
        memory.release()  # the hung call fails having done nothing
        for f in first:
            with pytest.raises(BackendUnavailable):
                f.result(timeout=WAIT)
        assert users.peek("a") is None
        assert users.peek("kept") == {"id": "kept", "n": 0, "version": 1}
        assert users.peek("b") == {"id": "b", "version": 1}  # not rolled back with them
        # the supervisor schedules the restart when it hears of the failure: move time on
        # until it has happened
        assert wait_until(lambda: clock.advance(0.01) or restarted.is_set())
        assert not later.done()  # nothing was due: the lane waits for its delay
        c.flush()
        assert later.result(timeout=WAIT)["id"] == "b"
        assert sorted(memory.snapshot("users")) == ["b", "kept"]


def test_partial_failure_fails_only_those_items(memory):
    with create_client(memory.backend) as other:
        other.store("users").create({"id": "taken", "by": "other"})
    clock = MockClock()
    with queue_client(memory, clock, max_batch=100, max_delay=60) as c:
        users = c.store("users")
        futures = {i: users.nowait.create({"id": i, "by": "me"}) for i in ("x", "taken", "y")}
        c.flush()
        assert futures["x"].result(0)["by"] == "me"
        assert futures["y"].result(0)["by"] == "me"
        with pytest.raises(ConflictError):
            futures["taken"].result(0)
        assert users.peek("taken") is None  # rolled back; the server's row is not ours
        assert users.peek("x")["version"] == 1
        assert memory.snapshot("users")["taken"]["by"] == "other"


def test_retries_resend_the_same_entries_and_apply_once(memory, fast_policy):
    """The first call runs and loses its reply; the retry carries the same idempotency keys,
    so the server answers from what it stored instead of writing again."""
    clock = MockClock()
    with queue_client(
        memory, clock, fast_policy, max_batch=100, max_delay=0, retries=5, retry_backoff=0.05
    ) as c:
        users = c.store("users")
        users.create({"id": "u0", "n": 0})
        memory.faults.configure(lost_reply_rate=1.0)
        calls = memory.stats.calls
        futures = [users.nowait.update("u0", {"n": 1})]
        futures += [users.nowait.create({"id": f"u{i}"}) for i in range(1, 4)]
        # the lost call ran: the server has the writes, the client does not know yet
        seen = threading.Event()
        for _ in range(200):
            if memory.snapshot("users").get("u0", {}).get("n") == 1:
                seen.set()
                break
            wait_all(futures, timeout=0.01)
        assert seen.is_set()
        memory.heal()
        for _ in range(50):  # let the clock carry restarts and backoffs until all settle
            clock.advance(0.1)
            finished, _ = wait_all(futures, timeout=0.05)
            if len(finished) == len(futures):
                break
        out = results(futures)
        assert out[0] == {"id": "u0", "n": 1, "version": 2}  # applied once: not version 3
        assert [o["version"] for o in out[1:]] == [1, 1, 1]  # a second create would conflict
        assert memory.faults.stats.lost_replies >= 1
        assert memory.stats.calls - calls >= 2
        assert memory.snapshot("users")["u0"]["version"] == 2
        assert c._strategies["queue"].proxy().stats.get()["retries"] >= 1


# -- backpressure ---------------------------------------------------------------------


@pytest.mark.parametrize("policy", ["block", "reject"])
def test_backpressure_bounds_the_queue(memory, fast_policy, policy):
    memory.faults.configure(hang_outcome="run")
    memory.faults.hang()
    with queue_client(
        memory, None, fast_policy, max_batch=2, max_delay=0, max_queue=4, backpressure=policy
    ) as c:
        users = c.store("users")
        admitted = [users.nowait.create({"id": f"u{i}"}) for i in range(4)]
        assert memory.faults.wait_hanging(1, timeout=WAIT)
        assert c._queue_gate.used == 4
        if policy == "reject":
            with pytest.raises(LimitsError):
                users.nowait.create({"id": "extra"})
            assert users.peek("extra") is None  # refused before anything changed
            memory.heal()
            assert [f.result(timeout=WAIT)["id"] for f in admitted] == ["u0", "u1", "u2", "u3"]
            assert users.create({"id": "extra"})["version"] == 1
        else:
            passed = threading.Event()
            extra: list[Future] = []

            def producer() -> None:
                extra.append(users.nowait.create({"id": "extra"}))
                passed.set()

            thread = threading.Thread(target=producer)
            thread.start()
            assert not passed.wait(0.2)  # blocked at the gate while the backend hangs
            assert c._queue_gate.used == 4
            memory.heal()
            assert passed.wait(WAIT)
            thread.join(WAIT)
            c.flush()
            assert extra[0].result(timeout=WAIT)["id"] == "extra"
        assert c._queue_gate.used == 0
        assert len(memory.snapshot("users")) == 5


def test_memory_stays_bounded_under_a_fast_producer():
    memory = MemoryBackend(seed=5, cost_per_call=0.002)
    peak = 0
    with create_client(
        memory.backend,
        strategy="queue",
        timeout=30,
        queue={"max_batch": 20, "max_delay": 0.001, "max_queue": 50},
    ) as c:
        users = c.store("users")
        futures = []
        for i in range(600):
            futures.append(users.nowait.create({"id": f"u{i}"}))
            peak = max(peak, c._queue_gate.used)
        assert all(o["version"] == 1 for o in results(futures))
    assert 20 <= peak <= 50
    assert memory.stats.calls <= 600 // 20 * 2
    assert len(memory.snapshot("users")) == 600


def test_gate_block_times_out_with_a_limits_error():
    gate = QueueGate(QueueOptions(max_queue=2))
    gate.acquire(2, timeout=1)
    with pytest.raises(LimitsError):
        gate.acquire(1, timeout=0.05)
    with pytest.raises(LimitsError):
        gate.acquire(3, timeout=1)  # larger than the bound: never admissible
    gate.release(2)
    gate.acquire(1, timeout=0)
    assert gate.used == 1


# -- lanes ----------------------------------------------------------------------------


def test_a_hung_lane_does_not_hold_back_another(memory, fast_policy):
    # two stores whose calls go to different backend actors of a pool of two
    names = ["s0"] + [f"s{i}" for i in range(1, 50)]
    slow = names[0]
    fast = next(n for n in names if zlib.crc32(n.encode()) % 2 != zlib.crc32(slow.encode()) % 2)
    memory.faults.configure(hang_outcome="run")
    with create_client(
        memory.backend,
        strategy="queue",
        pool_size=2,
        supervisor=fast_policy,
        timeout=10,
        queue={"max_delay": 0},
    ) as c:
        memory.faults.hang(calls=1)
        stuck = c.store(slow).nowait.create({"id": "a"})
        assert memory.faults.wait_hanging(1, timeout=WAIT)
        c.store(slow).nowait.create({"id": "b"})  # waits behind its lane's batch
        assert c.store(fast).create({"id": "x"})["version"] == 1
        assert not stuck.done()
        memory.release()
        c.flush()
        assert stuck.result(0)["id"] == "a"
        assert sorted(memory.snapshot(slow)) == ["a", "b"]


# -- coalescing -----------------------------------------------------------------------


def test_updates_of_one_entity_in_one_request_coalesce(memory):
    clock = MockClock()
    with queue_client(memory, clock, max_delay=60, coalesce=True) as c:
        users = c.store("users")
        users.create({"id": "u1", "n": 0}, strategy="direct")
        entries = memory.stats.entries
        many = users.nowait.update_many([("u1", {"a": 1}), ("u1", {"b": 2}), ("u1", {"n": 3})])
        c.flush()
        out = many.result(0)
        assert [o["ok"] for o in out] == [True, True, True]
        assert out[0]["value"] == {"id": "u1", "n": 0, "a": 1, "version": 2}
        assert out[2]["value"] == {"id": "u1", "n": 3, "a": 1, "b": 2, "version": 2}
        assert memory.stats.entries - entries == 1  # one entry on the wire
        assert memory.snapshot("users")["u1"] == {"id": "u1", "n": 3, "a": 1, "b": 2, "version": 2}
        assert users.peek("u1") == {"id": "u1", "n": 3, "a": 1, "b": 2, "version": 2}
        assert users.update("u1", {"c": 4}, strategy="direct")["version"] == 3


# -- freezegun and close --------------------------------------------------------------


def test_nothing_hangs_under_freezegun(memory):
    from freezegun import freeze_time

    with freeze_time("2026-01-01"):
        with queue_client(memory, max_batch=1000, max_delay=1.0) as c:
            users = c.store("users")
            futures = [users.nowait.create({"id": f"u{i}"}) for i in range(5)]
            c.flush(timeout=5)  # the delay timer never fires; flush sends anyway
            assert [f.result(0)["version"] for f in futures] == [1] * 5
            late = users.nowait.update("u1", {"n": 1})
        assert late.result(0)["n"] == 1  # close drained it
    assert memory.snapshot("users")["u1"]["version"] == 2


def test_close_drains_the_queue_and_stops_every_actor(memory):
    clock = MockClock()
    c = queue_client(memory, clock, max_batch=1000, max_delay=60)
    users = c.store("users")
    futures = [users.nowait.create({"id": f"u{i}"}) for i in range(30)]
    c.close()
    assert all(f.result(0)["version"] == 1 for f in futures)
    assert len(memory.snapshot("users")) == 30
    assert pykka.ActorRegistry.get_all() == []
    with pytest.raises(ClientClosed):
        users.create({"id": "late"})
