"""Plugins: ordering by provides/requires, the context they get, ops handlers by priority."""

from __future__ import annotations

import threading

import pytest

from atoma_actors import BackendUnavailable, ValidationError, create_client
from atoma_actors.runtime.ops_chain import Retry


def plugin(pid, log, provides=(), requires=(), handler=None, priority=0):
    def setup(ctx):
        log.append(("setup", pid))
        if handler is not None:
            ctx.io.use(handler, priority)
        return lambda: log.append(("dispose", pid))

    return {"id": pid, "provides": provides, "requires": requires, "setup": setup}


def test_plugins_ordered_by_requires_and_disposed_in_reverse():
    log: list = []
    plugins = [
        plugin("sync", log, requires=("auth",)),
        plugin("auth", log, provides=("auth",)),
        plugin("obs", log),
    ]
    with create_client(plugins=plugins):
        pass
    assert log == [
        ("setup", "auth"),
        ("setup", "sync"),
        ("setup", "obs"),
        ("dispose", "obs"),
        ("dispose", "sync"),
        ("dispose", "auth"),
    ]


def test_missing_dependency_and_cycle_fail_at_create_client():
    with pytest.raises(ValidationError, match="requires"):
        create_client(plugins=[plugin("a", [], requires=("nothing",))])
    with pytest.raises(ValidationError, match="cycle"):
        create_client(
            plugins=[
                plugin("a", [], provides=("x",), requires=("y",)),
                plugin("b", [], provides=("y",), requires=("x",)),
            ]
        )


class Tracer:
    def __init__(self, name, seen):
        self.name = name
        self.seen = seen

    def on_request(self, call):
        self.seen.append((self.name, "in", threading.current_thread().name))
        return call.evolve(context={**call.context, self.name: True})

    def on_response(self, call, outcome):
        self.seen.append((self.name, "out", sorted(call.context)))
        return outcome


def test_handlers_run_by_priority_each_in_its_own_actor():
    seen: list = []
    plugins = [
        plugin("low", [], handler=Tracer("low", seen), priority=1),
        plugin("high", [], handler=Tracer("high", seen), priority=10),
    ]
    with create_client(plugins=plugins) as c:
        c.store("users").create({"id": "u1"})
    inbound = [(name, thread) for name, way, thread in seen if way == "in"]
    assert [name for name, _ in inbound] == ["high", "low"]
    assert inbound[0][1] != inbound[1][1]
    outbound = [(name, ctx) for name, way, ctx in seen if way == "out"]
    # each handler sees, on the way back, the call as it passed it on
    assert outbound == [("low", ["high", "low"]), ("high", ["high"])]


class RetryOnce:
    def __init__(self):
        self.attempts = []

    def on_response(self, call, outcome):
        self.attempts.append(call.attempt)
        if isinstance(outcome, BaseException) and call.attempt == 1:
            return Retry(call)
        return outcome


def test_retry_handler_resends_the_same_ops(memory):
    retry = RetryOnce()
    with create_client(memory.backend, plugins=[plugin("retry", [], handler=retry)]) as c:
        users = c.store("users")
        memory.faults.crash_next(2)
        with pytest.raises(BackendUnavailable):
            users.create({"id": "u1"})  # the retry meets a restarting or crashing actor
        assert retry.attempts == [1, 2]


def test_handler_can_answer_without_the_backend(memory):
    class Deny:
        def on_request(self, call):
            return BackendUnavailable("denied by policy")

    with create_client(memory.backend, plugins=[plugin("deny", [], handler=Deny())]) as c:
        with pytest.raises(BackendUnavailable, match="denied"):
            c.store("users").create({"id": "u1"})
        assert c.store("users").peek("u1") is None
    assert memory.stats.calls == 0


def test_context_channels_and_writeback(memory):
    holder = {}

    def setup(ctx):
        holder["ctx"] = ctx

    with create_client(memory.backend, plugins=[{"id": "p", "setup": setup}]) as c:
        ctx = holder["ctx"]
        c.store("users").create({"id": "u1", "n": 1})
        assert ctx.store.query("users", {}).data[0]["id"] == "u1"
        batch = ctx.store.changes.pull(None)
        assert [ch.id for ch in batch.changes] == ["u1"]
        ctx.writeback.commit(
            "users",
            {
                "upserts": [{"id": "u2", "version": 4, "n": 2}],
                "deletes": [{"id": "u1", "version": 2}],
            },
        )
        assert c.store("users").peek("u2") == {"id": "u2", "version": 4, "n": 2}
        assert c.store("users").peek("u1") is None
        with pytest.raises(ValidationError):
            ctx.io.use(Tracer("late", []))
