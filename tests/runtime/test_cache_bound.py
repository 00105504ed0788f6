"""`create_client(cache={"max_entities": N})`: a bounded cache for long-running workers."""

from __future__ import annotations

import pytest

from atoma_actors import ValidationError, create_client
from atoma_actors.testing.clock import MockClock


def _seed(memory, ids):
    with create_client(memory.backend, timeout=10) as other:
        other.store("users").create_many([{"id": i, "n": n} for n, i in enumerate(ids)])


def test_least_recently_used_confirmed_entities_are_evicted(memory):
    with create_client(memory.backend, cache={"max_entities": 3}, timeout=10) as c:
        users = c.store("users")
        for i in range(5):
            users.create({"id": f"u{i}", "n": i})
        assert len(users) == 3
        assert [users.peek(f"u{i}") is not None for i in range(5)] == [
            False,
            False,
            True,
            True,
            True,
        ]


def test_an_entity_read_recently_is_kept(memory):
    with create_client(memory.backend, cache={"max_entities": 3}, timeout=10) as c:
        users = c.store("users")
        for i in range(3):
            users.create({"id": f"u{i}"})
        assert users.get("u0") is not None  # a cache hit: u0 is now the most recent
        users.create({"id": "u3"})
        assert users.peek("u0") is not None
        assert users.peek("u1") is None  # the least recently used went instead


def test_an_evicted_entity_is_read_again_from_the_backend(memory):
    with create_client(memory.backend, cache={"max_entities": 2}, timeout=10) as c:
        users = c.store("users")
        for i in range(4):
            users.create({"id": f"u{i}", "n": i})
        assert users.peek("u0") is None
        calls = memory.stats.calls
        assert users.get("u0") == {"id": "u0", "n": 0, "version": 1}
        assert memory.stats.calls == calls + 1  # it went to the backend
        assert users.peek("u0") is not None  # and is cached again
        # an update of an evicted entity fetches it first, then applies to the real version
        assert users.peek("u1") is None
        assert users.update("u1", {"n": 10}) == {"id": "u1", "n": 10, "version": 2}


def test_a_pending_entity_is_never_evicted(memory):
    _seed(memory, [f"x{i}" for i in range(5)])
    clock = MockClock()  # the queue's delay never passes: the create stays pending
    with create_client(
        memory.backend,
        strategy="queue",
        queue={"max_delay": 3600},
        clock=clock,
        cache={"max_entities": 2},
        timeout=10,
    ) as c:
        users = c.store("users")
        pending = users.nowait.create({"id": "p", "n": -1})
        assert len(users.query({}).data) == 5  # the backend's five, read and cached
        assert users.peek("p") == {"id": "p", "n": -1, "version": 1}
        assert len(users) == 3  # two confirmed, plus the pending one
        c.flush()
        assert pending.result(timeout=10)["id"] == "p"
        assert users.peek("p") is not None  # confirmed last: the most recent
        assert len(users) == 2


def test_bad_cache_options_are_refused():
    with pytest.raises(ValidationError):
        create_client(cache={"max_entities": 0})
    with pytest.raises(ValidationError):
        create_client(cache={"size": 10})


def test_the_embedded_default_refuses_a_bound():
    # there the store *is* the data: evicting would lose it
    with pytest.raises(ValidationError, match="embedded default"):
        create_client(cache={"max_entities": 10})
