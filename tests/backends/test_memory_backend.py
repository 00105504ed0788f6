"""MemoryBackend: the Backend it hands out, sharing, counters, and every fault mode."""

from __future__ import annotations

import itertools
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from atoma_backend_memory import (
    FaultPlan,
    InjectedCrash,
    InjectedFault,
    InjectedHangReleased,
    InjectedLostReply,
    MemoryBackend,
    memory_backend,
)

from atoma_actors.core.storage import MemoryStorage
from atoma_actors.protocol import (
    Backend,
    NotifyMessage,
    OperationResultError,
    OpsClient,
    OpsRequest,
    ValidationError,
)

WAIT = 10.0  # generous bound for anything that should happen at once
_keys = itertools.count()


def request(*ops: dict) -> OpsRequest:
    return OpsRequest.model_validate({"meta": {"v": 1}, "ops": list(ops)})


def upsert_op(op_id: str, resource: str, *ids: str, key: str | None = None) -> dict:
    entries = [
        {
            "action": "upsert",
            "item": {
                "id": id_,
                "value": {"v": op_id},
                "meta": {"idempotencyKey": key or f"k{next(_keys)}", "clientTimeMs": 0},
            },
            "options": {"upsert": {"conflict": "lww", "apply": "merge"}},
        }
        for id_ in ids
    ]
    return {"opId": op_id, "kind": "write", "write": {"resource": resource, "entries": entries}}


def create_op(op_id: str, resource: str = "r") -> dict:
    item = {"value": {}, "meta": {"idempotencyKey": f"k{next(_keys)}", "clientTimeMs": 0}}
    entry = {"action": "create", "item": item}
    return {"opId": op_id, "kind": "write", "write": {"resource": resource, "entries": [entry]}}


def pull_op(op_id: str = "p") -> dict:
    return {"opId": op_id, "kind": "changes.pull", "pull": {}}


def call(backend: MemoryBackend, *ops: dict) -> list:
    req = request(*ops)
    results, status = backend.execute_ops(req.ops, req.meta)
    assert status == 200
    assert [r.op_id for r in results] == [op["opId"] for op in ops]
    return results


def outcome(backend: MemoryBackend, n_ops: int = 3) -> tuple[Any, ...]:
    """What one call of `n_ops` single-entry writes came to: an exception name or ok flags."""
    ops = [upsert_op(f"o{i}", "r", f"id{i}") for i in range(n_ops)]
    try:
        return tuple(r.ok for r in call(backend, *ops))
    except InjectedFault as exc:
        return (type(exc).__name__,)


class VirtualSleep:
    def __init__(self) -> None:
        self.slept: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.slept.append(seconds)


@pytest.fixture
def server() -> MemoryBackend:
    backend = MemoryBackend(seed=1, sleep=VirtualSleep())
    yield backend
    backend.heal()  # never leave a thread hung behind a failed test


# -- the Backend it hands out --------------------------------------------------------------


def test_backend_wires_the_store_endpoint_notify_and_dispose(server):
    backend = server.backend
    assert isinstance(backend, Backend)
    assert backend is server.backend
    assert backend.key == "memory"
    assert backend.capabilities.store_persistence == "remote"
    assert backend.store.ops_client is server
    assert isinstance(server, OpsClient)
    assert isinstance(server.storage, OpsClient)
    heard: list[NotifyMessage] = []
    unsubscribe = backend.notify.subscribe(heard.append)
    call(server, upsert_op("w", "users", "u1"))
    assert heard == [NotifyMessage(resources=["users"])]
    unsubscribe()


def test_memory_backend_function_gives_a_ready_backend():
    backend = memory_backend("mem2")
    assert backend.key == "mem2"
    req = request(upsert_op("w", "r", "a"))
    results, status = backend.store.ops_client.execute_ops(req.ops, req.meta)
    assert (status, results[0].ok) == (200, True)


def test_disposing_never_destroys_data_and_clients_share_it(server):
    call(server, upsert_op("w", "r", "a"))
    server.backend.dispose()
    server.backend.dispose()
    assert server.stats.disposals == 2
    assert list(server.snapshot("r")) == ["a"]
    other_client = server.backend.store.ops_client
    (pulled,) = call(other_client, pull_op())
    assert [c.id for c in pulled.data.changes] == ["a"]


def test_a_given_storage_is_used_as_is():
    storage = MemoryStorage()
    server = MemoryBackend(storage=storage)
    call(server, upsert_op("w", "r", "a"))
    assert storage.get("r", "a")["v"] == "w"


def test_counters_count_calls_ops_and_entries(server):
    call(server, upsert_op("a", "r", "1", "2"), pull_op("b"))
    call(server, upsert_op("c", "r", "3"))
    stats = server.stats
    assert (stats.calls, stats.ops, stats.entries) == (2, 3, 3)
    server.reset_stats()
    assert (server.stats.calls, server.stats.ops, server.stats.entries) == (0, 0, 0)


def test_seeded_backend_makes_reproducible_ids():
    def ids(seed: int) -> list[str]:
        server = MemoryBackend(seed=seed)
        return [r.data.results[0].id for r in call(server, create_op("a"), create_op("b"))]

    assert ids(3) == ids(3)
    assert ids(3) != ids(4)


def test_cost_per_call_and_latency_go_through_the_injected_sleep():
    sleep = VirtualSleep()
    server = MemoryBackend(sleep=sleep, cost_per_call=0.001, faults=FaultPlan(latency=0.05))
    call(server, pull_op())
    assert sleep.slept == [pytest.approx(0.051)]
    server.faults.configure(latency=(0.1, 0.2))
    for _ in range(20):
        call(server, pull_op())
    drawn = [s - 0.001 for s in sleep.slept[1:]]
    assert all(0.1 <= d <= 0.2 for d in drawn)
    assert len(set(drawn)) > 1
    server.heal()
    server.cost_per_call = 0.0
    call(server, pull_op())
    assert len(sleep.slept) == 21


def test_bad_settings_are_validation_errors():
    with pytest.raises(ValidationError):
        FaultPlan(error_rate=1.5)
    with pytest.raises(ValidationError):
        FaultPlan(latency=(0.2, 0.1))
    with pytest.raises(ValidationError):
        FaultPlan(hang_outcome="explode")
    with pytest.raises(ValidationError):
        MemoryBackend(cost_per_call=-1)
    server = MemoryBackend()
    with pytest.raises(ValidationError):
        server.faults.configure(no_such_fault=1)
    with pytest.raises(ValidationError):
        server.faults.configure(crash_rate=-0.1)
    with pytest.raises(ValidationError):
        server.faults.crash_next(-1)


# -- error rate --------------------------------------------------------------------------


def test_error_rate_fails_ops_alone_with_retryable_adapter_errors(server):
    server.faults.configure(error_rate=0.5)
    results = call(server, *(upsert_op(f"o{i}", "r", f"id{i}") for i in range(40)))
    failed = [r for r in results if not r.ok]
    assert 5 < len(failed) < 35
    for r in failed:
        assert isinstance(r, OperationResultError)
        assert (r.error.kind, r.error.retryable) == ("adapter", True)
    # Failed ops did not run; the others did.
    assert set(server.snapshot("r")) == {f"id{i}" for i, r in enumerate(results) if r.ok}
    assert server.stats.ops == 40 - len(failed)
    assert server.faults.stats.errors == len(failed)


def test_error_rate_one_fails_everything_and_heal_stops_it(server):
    server.faults.configure(error_rate=1.0)
    assert outcome(server) == (False, False, False)
    assert server.snapshot("r") == {}
    assert not server.faults.plan.quiet
    server.heal()
    assert server.faults.plan.quiet
    assert outcome(server) == (True, True, True)


# -- determinism -------------------------------------------------------------------------


def _fates(seed: int, calls: int = 60) -> list[tuple[Any, ...]]:
    sleep = VirtualSleep()
    server = MemoryBackend(
        seed=seed,
        sleep=sleep,
        faults=FaultPlan(error_rate=0.2, crash_rate=0.1, lost_reply_rate=0.1, latency=(0, 1)),
    )
    fates = [outcome(server) for _ in range(calls // 2)]
    server.faults.configure(error_rate=0.0)  # changing the plan must not shift later draws
    fates += [outcome(server) for _ in range(calls // 2)]
    return [*fates, tuple(sleep.slept)]


def test_faults_replay_identically_for_a_seed():
    first, again, other = _fates(11), _fates(11), _fates(12)
    assert first == again
    assert first != other
    kinds = {f[0] for f in first[:-1]}
    assert {"InjectedCrash", "InjectedLostReply", True, False} <= kinds


def test_plan_changes_do_not_shift_later_draws():
    def crashes(quiet_first: bool) -> list[bool]:
        server = MemoryBackend(seed=5, faults=FaultPlan(crash_rate=0.3))
        if quiet_first:
            server.faults.configure(error_rate=1.0)
        fates = [outcome(server, 1) for _ in range(10)]
        server.faults.configure(error_rate=0.0)
        return [f == ("InjectedCrash",) for f in fates] + [
            outcome(server, 1) == ("InjectedCrash",) for _ in range(20)
        ]

    a, b = crashes(False), crashes(True)
    assert a == b
    assert any(a)


# -- crash ---------------------------------------------------------------------------------


def test_crash_next_raises_a_non_protocol_exception_and_runs_nothing(server):
    server.faults.crash_next(2)
    for _ in range(2):
        with pytest.raises(InjectedCrash) as info:
            call(server, upsert_op("w", "r", "a"))
        assert isinstance(info.value, RuntimeError)
    assert server.snapshot("r") == {}
    assert server.stats.ops == 0
    assert server.stats.calls == 2
    assert outcome(server) == (True, True, True)
    assert server.faults.stats.crashes == 2


def test_crash_rate_crashes_some_calls(server):
    server.faults.configure(crash_rate=0.5)
    fates = [outcome(server, 1) for _ in range(40)]
    crashed = fates.count(("InjectedCrash",))
    assert 5 < crashed < 35
    assert server.stats.ops == 40 - crashed


def test_heal_cancels_pending_crashes(server):
    server.faults.crash_next(5)
    server.heal()
    assert outcome(server, 1) == (True,)


def test_a_lost_reply_runs_the_ops_and_an_idempotent_retry_applies_once(server):
    server.faults.configure(lost_reply_rate=1.0)
    with pytest.raises(InjectedLostReply):
        call(server, upsert_op("w", "r", "a", key="retry-me"))
    assert server.snapshot("r")["a"]["version"] == 1
    server.heal()
    (retried,) = call(server, upsert_op("w2", "r", "a", key="retry-me"))
    assert retried.data.results[0].version == 1
    assert server.snapshot("r")["a"] == {"id": "a", "version": 1, "v": "w"}


# -- hang ----------------------------------------------------------------------------------


def _start_call(pool: ThreadPoolExecutor, server: MemoryBackend, *ops: dict):
    return pool.submit(call, server, *ops)


def test_hang_blocks_until_release_then_crashes_without_running(server):
    with ThreadPoolExecutor(max_workers=2) as pool:
        server.faults.hang()
        first = _start_call(pool, server, upsert_op("w", "r", "a"))
        second = _start_call(pool, server, upsert_op("w", "r", "b"))
        assert server.faults.wait_hanging(2, timeout=WAIT)
        assert not first.done()
        assert server.faults.hanging == 2
        server.faults.release()
        for future in (first, second):
            with pytest.raises(InjectedHangReleased):
                future.result(timeout=WAIT)
    assert server.faults.hanging == 0
    assert server.snapshot("r") == {}
    assert outcome(server) == (True, True, True)  # released means no more hanging


def test_hang_ignores_the_deadline(server):
    server.faults.hang(1)
    req = request(upsert_op("w", "r", "a"))
    with ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(server.execute_ops, req.ops, req.meta, deadline=0.0)
        assert server.faults.wait_hanging(1, timeout=WAIT)
        assert not future.done()
        server.heal()
        with pytest.raises(InjectedHangReleased):
            future.result(timeout=WAIT)


def test_hang_a_number_of_calls_with_late_answers(server):
    server.faults.configure(hang_outcome="run")
    server.faults.hang(1)
    with ThreadPoolExecutor(max_workers=1) as pool:
        hung = _start_call(pool, server, upsert_op("late", "r", "a"))
        assert server.faults.wait_hanging(1, timeout=WAIT)
        # Only one call was to hang: the next gets through while the first is stuck.
        assert outcome(server, 1) == (True,)
        assert not hung.done()
        server.faults.release()
        (late,) = hung.result(timeout=WAIT)
    assert late.ok
    assert server.snapshot("r")["a"]["v"] == "late"


def test_wait_hanging_times_out_when_nothing_hangs(server):
    assert server.faults.wait_hanging(1, timeout=0.01) is False


def test_hang_again_after_a_release(server):
    with ThreadPoolExecutor(max_workers=1) as pool:
        for _ in range(2):
            server.faults.hang()
            future = _start_call(pool, server, pull_op())
            assert server.faults.wait_hanging(1, timeout=WAIT)
            server.faults.release()
            with pytest.raises(InjectedHangReleased):
                future.result(timeout=WAIT)
    assert server.faults.stats.hangs == 2


# -- threads -----------------------------------------------------------------------------


def test_many_threads_through_a_faulty_backend_keep_the_data_consistent(busy_switching):
    server = MemoryBackend(seed=9, faults=FaultPlan(error_rate=0.2, crash_rate=0.1))
    # acknowledged[n][id] = [(i, version), ...] of thread n's acknowledged writes to id
    acknowledged: list[dict[str, list[tuple[int, int]]]] = [{} for _ in range(8)]

    def worker(n: int) -> None:
        for i in range(100):
            id_ = f"id{i % 7}"
            op = upsert_op("w", "r", id_)
            op["write"]["entries"][0]["item"]["value"] = {f"t{n}": i}
            try:
                (result,) = call(server, op)
            except InjectedCrash:
                continue
            if result.ok:
                version = result.data.results[0].version
                acknowledged[n].setdefault(id_, []).append((i, version))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
        assert not t.is_alive()
    snapshot = server.snapshot("r")
    total = sum(len(w) for acks in acknowledged for w in acks.values())
    assert sum(e["version"] for e in snapshot.values()) == total == server.stats.entries
    assert 0 < total < 800
    for n, acks in enumerate(acknowledged):
        for id_, writes in acks.items():
            versions = [v for _, v in writes]
            assert versions == sorted(set(versions))  # one thread's writes keep their order
            assert snapshot[id_][f"t{n}"] == writes[-1][0]  # its last acknowledged value


def test_public_names_are_exactly_the_exported_ones():
    import atoma_backend_memory

    public = {n for n in vars(atoma_backend_memory) if not n.startswith("_")}
    assert sorted(atoma_backend_memory.__all__) == atoma_backend_memory.__all__
    assert set(atoma_backend_memory.__all__) == public
