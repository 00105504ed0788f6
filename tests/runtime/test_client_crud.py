"""CRUD and queries through the client, with no backend and with the memory backend."""

from __future__ import annotations

import pytest

from atoma_actors import (
    ClientClosed,
    ConflictError,
    NotFoundError,
    ValidationError,
    create_client,
)


def test_create_assigns_id_and_version(client):
    users = client.store("users")
    ada = users.create({"name": "Ada"})
    assert isinstance(ada["id"], str) and ada["id"]
    assert ada["version"] == 1
    assert users.get(ada["id"]) == ada
    assert users.peek(ada["id"]) == ada


def test_update_patch_and_callable(client):
    users = client.store("users")
    users.create({"id": "u1", "name": "Ada", "age": 3})
    assert users.update("u1", {"age": 4}) == {"id": "u1", "name": "Ada", "age": 4, "version": 2}
    bumped = users.update("u1", lambda cur: {**cur, "age": cur["age"] + 1})
    assert bumped["age"] == 5 and bumped["version"] == 3


def test_returned_dicts_are_copies(client):
    users = client.store("users")
    created = users.create({"id": "u1", "tags": ["a"], "nested": {"k": 1}})
    created["tags"].append("b")
    created["nested"]["k"] = 2
    seen = users.peek("u1")
    seen["tags"].append("c")
    assert users.peek("u1") == {"id": "u1", "tags": ["a"], "nested": {"k": 1}, "version": 1}


def test_create_existing_is_conflict_and_changes_nothing(client):
    users = client.store("users")
    users.create({"id": "u1", "name": "Ada"})
    with pytest.raises(ConflictError) as info:
        users.create({"id": "u1", "name": "Bob"})
    assert info.value.current is not None and info.value.current.value["name"] == "Ada"
    assert users.peek("u1")["name"] == "Ada"


def test_update_and_delete_missing_are_not_found(client):
    users = client.store("users")
    with pytest.raises(NotFoundError):
        users.update("ghost", {"a": 1})
    with pytest.raises(NotFoundError):
        users.delete("ghost")
    assert users.list() == []


def test_delete_and_recreate_keeps_version_growing(client):
    users = client.store("users")
    users.create({"id": "u1", "v": 1})
    users.update("u1", {"v": 2})
    users.delete("u1")
    assert users.get("u1") is None
    again = users.create({"id": "u1", "v": 3})
    assert again["version"] > 2
    assert users.update("u1", {"v": 4})["version"] == again["version"] + 1


def test_upsert_modes(client):
    users = client.store("users")
    assert users.upsert({"id": "u1", "a": 1})["version"] == 1
    merged = users.upsert({"id": "u1", "b": 2})
    assert merged == {"id": "u1", "a": 1, "b": 2, "version": 2}
    replaced = users.upsert({"id": "u1", "c": 3}, apply="replace")
    assert replaced == {"id": "u1", "c": 3, "version": 3}
    lww = users.upsert({"id": "u1", "d": 4}, conflict="lww", apply="replace")
    assert lww == {"id": "u1", "d": 4, "version": 4}


def test_many_are_all_settled(client):
    users = client.store("users")
    users.create({"id": "taken"})
    settled = users.create_many([{"id": "a"}, {"id": "taken"}, {"id": "b"}])
    assert [s["ok"] for s in settled] == [True, False, True]
    assert [s["index"] for s in settled] == [0, 1, 2]
    assert isinstance(settled[1]["error"], ConflictError)
    assert settled[1]["current"]["version"] == 1
    updated = users.update_many([{"id": "a", "x": 1}, ("nope", {"x": 2}), ("b", {"x": 3})])
    assert [u["ok"] for u in updated] == [True, False, True]
    assert isinstance(updated[1]["error"], NotFoundError)
    upserted = users.upsert_many([{"id": "a", "y": 1}, {"id": "c", "y": 2}])
    assert all(u["ok"] for u in upserted)
    deleted = users.delete_many(["a", "zzz", "c"])
    assert [d["ok"] for d in deleted] == [True, False, True]
    assert sorted(e["id"] for e in users.list()) == ["b", "taken"]


def test_query_get_many_query_one(client):
    users = client.store("users")
    users.create_many(
        [{"id": f"u{i}", "age": i, "name": n} for i, n in enumerate(["ada", "bob", "cy", "dee"])]
    )
    result = users.query(
        {
            "filter": {"op": "gte", "field": "age", "value": 1},
            "sort": [{"field": "age", "dir": "desc"}],
            "page": {"mode": "offset", "limit": 2, "includeTotal": True},
        }
    )
    assert [e["id"] for e in result.data] == ["u3", "u2"]
    assert result.page_info.has_next is True and result.page_info.total == 3
    assert users.query_one({"filter": {"op": "eq", "field": "name", "value": "bob"}})["id"] == "u1"
    assert users.query_one({"filter": {"op": "eq", "field": "name", "value": "zed"}}) is None
    got = users.get_many(["u2", "missing", "u0"])
    assert [g and g["id"] for g in got] == ["u2", None, "u0"]


def test_bad_input_is_validation_error_and_changes_nothing(client):
    users = client.store("users")
    users.create({"id": "u1", "a": 1})
    for bad in (
        ["not", "a", "dict"],
        {"id": 5},
        {"id": "x", "v": object()},
        {"id": "x", "f": float("nan")},
        {"id": ""},
    ):
        with pytest.raises(ValidationError):
            users.create(bad)
    with pytest.raises(ValidationError):
        users.query({"filter": {"op": "nope"}})
    with pytest.raises(ValidationError):
        users.upsert({"id": "u1"}, conflict="maybe")
    assert users.list() == [{"id": "u1", "a": 1, "version": 1}]


def test_nowait_futures(client):
    users = client.store("users")
    futures = [users.nowait.create({"id": f"f{i}", "n": i}) for i in range(50)]
    assert [f.result(timeout=10)["id"] for f in futures] == [f"f{i}" for i in range(50)]
    client.settle(timeout=10)
    assert len(users) == 50


def test_schema_model_validates():
    from pydantic import BaseModel

    class User(BaseModel):
        name: str
        age: int = 0

    with create_client(schema={"users": {"model": User}}) as c:
        users = c.store("users")
        users.create({"id": "u1", "name": "Ada"})
        with pytest.raises(ValidationError):
            users.create({"id": "u2", "age": "old"})
        with pytest.raises(ValidationError):
            users.update("u1", {"age": "x"})
        assert users.peek("u1") == {"id": "u1", "name": "Ada", "version": 1}
        assert users.peek("u2") is None


def test_indexed_schema_gives_same_results():
    schema = {
        "items": {
            "indexes": [{"field": "kind", "type": "string"}, {"field": "n", "type": "number"}]
        }
    }
    with create_client(schema=schema) as indexed, create_client() as plain:
        for c in (indexed, plain):
            items = c.store("items")
            items.create_many([{"id": f"i{n}", "kind": "ab"[n % 2], "n": n} for n in range(40)])
            items.update("i3", {"kind": "a"})
            items.delete("i4")
        q = {
            "filter": {
                "op": "and",
                "args": [
                    {"op": "eq", "field": "kind", "value": "a"},
                    {"op": "lt", "field": "n", "value": 20},
                ],
            }
        }
        a = indexed.store("items").query_local(q).data
        b = plain.store("items").query_local(q).data
        assert a == b and "i3" in [e["id"] for e in a] and "i4" not in [e["id"] for e in a]


def test_closed_client_raises_clear_error_and_close_is_idempotent():
    c = create_client()
    users = c.store("users")
    users.create({"id": "u1"})
    c.close()
    c.close()
    assert c.closed
    with pytest.raises(ClientClosed):
        users.create({"id": "u2"})
    with pytest.raises(ClientClosed):
        users.get("u1")  # a cache hit too
    with pytest.raises(ClientClosed):
        users.nowait.get_many(["u1"])
    with pytest.raises(ClientClosed):
        c.store("other")


def test_events_fire_off_the_store_thread(client):
    import threading

    seen: list[tuple[str, str]] = []
    done = threading.Event()

    def handler(event):
        seen.append((event.name, threading.current_thread().name))
        if event.name == "write_committed":
            done.set()

    for name in ("store_created", "write_start", "write_committed", "change_optimistic"):
        client.events.on(name, handler)
    client.store("users").create({"id": "u1"})
    assert done.wait(5)
    client.settle(5)
    names = [n for n, _ in seen]
    assert {"store_created", "write_start", "change_optimistic", "write_committed"} <= set(names)
    with pytest.raises(ValidationError):
        client.events.on("no_such_event", handler)
