"""Implicit fetch: a write to an entity this client has not seen fetches it first, in order."""

from __future__ import annotations

from atoma_actors import create_client


def test_update_of_unseen_entity_fetches_it_first(memory):
    with create_client(memory.backend) as a, create_client(memory.backend) as b:
        a.store("docs").create({"id": "d1", "text": "one", "n": 1})
        updated = b.store("docs").update("d1", {"text": "two"})
        assert updated == {"id": "d1", "text": "two", "n": 1, "version": 2}


def test_create_then_update_without_waiting_keeps_order(memory):
    with create_client(memory.backend) as c:
        docs = c.store("docs")
        futures = []
        for i in range(50):
            futures.append(docs.nowait.create({"id": f"d{i}", "n": 0}))
            futures.append(docs.nowait.update(f"d{i}", {"n": 1}))
            futures.append(docs.nowait.update(f"d{i}", lambda cur: {**cur, "n": cur["n"] + 1}))
        results = [f.result(timeout=10) for f in futures]
        assert [r["version"] for r in results] == [1, 2, 3] * 50
        assert all(e["n"] == 2 for e in memory.snapshot("docs").values())
