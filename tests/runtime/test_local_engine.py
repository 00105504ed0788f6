"""The embedded default (no backend): each store is its own backend, holding each entity once."""

from __future__ import annotations

import pytest

from atoma_actors import ConflictError, NotFoundError, ValidationError, create_client


def _ctx_of(client_kwargs):
    holder = {}

    def setup(ctx):
        holder["ctx"] = ctx

    client = create_client(plugins=[{"id": "p", "setup": setup}], **client_kwargs)
    return client, holder["ctx"]


def test_writes_are_confirmed_in_the_store_itself():
    with create_client() as c:
        users = c.store("users")
        assert users.create({"id": "a", "n": 1}) == {"id": "a", "n": 1, "version": 1}
        # no second copy: the local ops endpoint has no storage behind it
        assert c.backend.store.ops_client.storage is None
        c.settle(timeout=5)  # nothing was left in flight by a write
        with pytest.raises(ConflictError):
            users.create({"id": "a"})
        users.delete("a")
        with pytest.raises(NotFoundError):
            users.update("a", {"n": 2})
        # versions keep growing across delete and re-create, as on every backend
        assert users.create({"id": "a"})["version"] == 3


def test_a_query_sees_every_write_before_it():
    with create_client() as c:
        users = c.store("users")
        q = {"filter": {"op": "gte", "field": "n", "value": 0}, "page": {"limit": 10}}
        for n in range(5):
            users.create({"id": f"u{n}", "n": n})
            assert len(users.query(q).data) == n + 1  # the cached list is never stale
        users.update("u0", {"n": -1})
        assert [e["id"] for e in users.query_local(q).data] == ["u1", "u2", "u3", "u4"]


def test_plugins_read_the_stores_through_the_store_channel():
    client, ctx = _ctx_of({})
    with client:
        client.store("users").create_many([{"id": "a", "n": 1}, {"id": "b", "n": 2}])
        data = ctx.store.query("users", {"filter": {"op": "eq", "field": "n", "value": 2}})
        assert [e["id"] for e in data.data] == ["b"]
        with pytest.raises(ValidationError, match="query ops only"):
            ctx.store.changes.pull(None)


def test_ops_handlers_keep_the_full_ops_path():
    seen = []

    class Tracer:
        def on_request(self, call):
            seen.append([op.kind for op in call.ops])
            return call

    def setup(ctx):
        ctx.io.use(Tracer())

    with create_client(plugins=[{"id": "t", "setup": setup}]) as c:
        users = c.store("users")
        users.create({"id": "a"})
        assert users.query({}).data[0]["id"] == "a"
        assert c.backend.store.ops_client.storage is not None  # writes go through a storage
    assert ["write"] in seen and ["query"] in seen


def test_an_unknown_strategy_is_refused_on_the_callers_thread():
    with create_client() as c:
        users = c.store("users")
        with pytest.raises(ValidationError, match="unknown strategy"):
            users.create({"id": "a"}, strategy="nope")
        assert users.peek("a") is None
