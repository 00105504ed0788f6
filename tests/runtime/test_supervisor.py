"""Supervisor: restart after a crash, exponential backoff, deadlines, and the circuit.

Time is a MockClock, so backoff and circuit timings are exact and nothing waits on real time.
"""

from __future__ import annotations

import pytest

from atoma_actors import BackendUnavailable, create_client
from atoma_actors.runtime.supervisor import SupervisorPolicy
from atoma_actors.testing import EventRecorder
from atoma_actors.testing.clock import MockClock

POLICY = SupervisorPolicy(
    backoff_base=1.0, backoff_max=8.0, max_failures=3, window=100.0, circuit_reset=10.0
)
EVENTS = (
    "backend_failed",
    "backend_restarted",
    "circuit_opened",
    "circuit_half_open",
    "circuit_closed",
)


def test_crash_fails_in_flight_write_then_restarts(memory):
    clock = MockClock()
    with create_client(memory.backend, clock=clock, supervisor=POLICY, timeout=10) as c:
        rec = EventRecorder(c, EVENTS)
        users = c.store("users")
        users.create({"id": "u1", "n": 0})
        memory.faults.crash_next(1)
        with pytest.raises(BackendUnavailable):
            users.update("u1", {"n": 1})
        assert users.peek("u1")["n"] == 0
        rec.wait("backend_failed")
        # during the backoff the slot is down: calls fail fast without reaching the backend
        calls = memory.stats.calls
        with pytest.raises(BackendUnavailable, match="restarting"):
            users.update("u1", {"n": 2})
        assert memory.stats.calls == calls
        assert rec.counts["backend_restarted"] == 0
        clock.advance(1.0)
        rec.wait("backend_restarted")
        assert users.update("u1", {"n": 3})["n"] == 3


def test_backoff_doubles_with_consecutive_failures(memory):
    clock = MockClock()
    with create_client(memory.backend, clock=clock, supervisor=POLICY, timeout=10) as c:
        rec = EventRecorder(c, EVENTS)
        users = c.store("users")
        memory.faults.crash_next(2)
        with pytest.raises(BackendUnavailable):
            users.create({"id": "a"})
        rec.wait("backend_failed", 1)  # the restart is scheduled once the failure is heard
        clock.advance(1.0)
        rec.wait("backend_restarted", 1)
        with pytest.raises(BackendUnavailable):
            users.create({"id": "b"})  # second consecutive crash: backoff 2s
        rec.wait("backend_failed", 2)
        clock.advance(1.0)
        with pytest.raises(BackendUnavailable, match="restarting"):
            users.create({"id": "c"})
        assert rec.counts["backend_restarted"] == 1
        clock.advance(1.0)
        rec.wait("backend_restarted", 2)
        assert users.create({"id": "d"})["version"] == 1
        assert sorted(memory.snapshot("users")) == ["d"]


def test_deadline_abandons_hung_call(memory):
    clock = MockClock()
    with create_client(memory.backend, clock=clock, supervisor=POLICY, timeout=10) as c:
        rec = EventRecorder(c, EVENTS)
        users = c.store("users")
        users.create({"id": "u1", "n": 0})
        memory.faults.hang(calls=1)
        pending = users.nowait.update("u1", {"n": 1}, timeout=2.0)
        assert memory.faults.wait_hanging(1, timeout=5)
        clock.advance(2.5)
        with pytest.raises(BackendUnavailable, match="hang"):
            pending.result(timeout=5)
        assert users.peek("u1")["n"] == 0
        clock.advance(1.0)
        rec.wait("backend_restarted")
        # a fresh actor serves while the old one is still stuck in its call
        assert memory.faults.hanging == 1
        assert users.update("u1", {"n": 5})["n"] == 5
        memory.release()


def test_circuit_opens_fails_fast_keeps_local_reads_and_closes_after_probe(memory):
    clock = MockClock()
    with create_client(memory.backend, clock=clock, supervisor=POLICY, timeout=10) as c:
        rec = EventRecorder(c, EVENTS)
        users = c.store("users")
        users.create({"id": "u1", "name": "Ada"})
        for i in range(4):
            memory.faults.crash_next(1)
            with pytest.raises(BackendUnavailable):
                users.update("u1", {"name": f"x{i}"})
            rec.wait("backend_failed", i + 1)
            if i < 3:
                clock.advance(POLICY.backoff_max)
                rec.wait("backend_restarted", i + 1)
        rec.wait("circuit_opened")
        calls = memory.stats.calls
        with pytest.raises(BackendUnavailable, match="circuit open"):
            users.update("u1", {"name": "fast"})
        assert memory.stats.calls == calls
        # local reads keep working while the circuit is open
        assert users.peek("u1")["name"] == "Ada"
        result = users.query({"filter": {"op": "eq", "field": "name", "value": "Ada"}})
        assert result.source == "local" and [e["id"] for e in result.data] == ["u1"]
        clock.advance(POLICY.circuit_reset)
        rec.wait("circuit_half_open")
        # the probe: one call goes through, and its success closes the circuit
        assert users.update("u1", {"name": "back"})["name"] == "back"
        rec.wait("circuit_closed")
        assert memory.snapshot("users")["u1"]["name"] == "back"


def test_nothing_hangs_under_freezegun(memory):
    from freezegun import freeze_time

    with freeze_time("2026-01-01"), create_client(memory.backend, timeout=5) as c:
        users = c.store("users")
        users.create({"id": "u1"})
        users.update("u1", {"a": 1})
        assert users.get("u1", force=True)["a"] == 1
        c.flush()
        c.settle()
