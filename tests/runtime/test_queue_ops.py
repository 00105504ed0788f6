"""The queue's pure helpers: ops that keep each entity's order, and same-request coalescing."""

from __future__ import annotations

from atoma_actors.protocol.ops import (
    CreateEntry,
    CreateItem,
    DeleteEntry,
    DeleteItem,
    ItemMeta,
    UpdateEntry,
    UpdateItem,
)
from atoma_actors.runtime.strategies.queue import coalesce_entries, ordered_ops

_keys = iter(range(10_000))


def meta() -> ItemMeta:
    return ItemMeta(idempotency_key=f"k{next(_keys)}", client_time_ms=0)


def create(id_: str, **value) -> CreateEntry:
    return CreateEntry(item=CreateItem(id=id_, value=value, meta=meta()))


def update(id_: str, base: int, **value) -> UpdateEntry:
    return UpdateEntry(item=UpdateItem(id=id_, base_version=base, value=value, meta=meta()))


def delete(id_: str, base: int) -> DeleteEntry:
    return DeleteEntry(item=DeleteItem(id=id_, base_version=base, meta=meta()))


def test_ops_keep_each_entitys_order():
    entries = [create("x"), delete("x", 1), create("x"), create("y"), update("z", 1)]
    ops = ordered_ops("r", entries)
    assert [idx for _, idx in ops] == [[0], [1], [2, 3], [4]]  # y joins the latest create op
    assert [op.write.entries[0].action for op, _ in ops] == ["create", "delete", "create", "update"]
    assert all(op.write.resource == "r" for op, _ in ops)


def test_different_entities_share_ops():
    entries = [create("a"), update("b", 1), create("c"), update("d", 4)]
    assert [idx for _, idx in ordered_ops("r", entries)] == [[0, 2], [1, 3]]


def test_updates_of_one_request_merge_into_the_entry_before():
    entries = [create("x", n=0), update("x", 1, n=1), update("x", 2, n=2), create("y")]
    wire, members = coalesce_entries(entries, [0, 0, 0, 0])
    assert members == [[0, 1, 2], [3]]
    assert wire[0].action == "create"
    assert wire[0].item.value == {"n": 2}
    assert wire[0].item.meta.idempotency_key == entries[0].item.meta.idempotency_key
    assert entries[0].item.value == {"n": 0}  # the caller's own entry is untouched


def test_no_merge_across_requests_or_broken_chains():
    across = [create("x"), update("x", 1, n=1)]
    assert coalesce_entries(across, [0, 1])[1] == [[0], [1]]
    stale = [update("x", 1, n=1), update("x", 5, n=2)]  # not planned on top of the first
    assert coalesce_entries(stale, [0, 0])[1] == [[0], [1]]
    deleted = [create("x"), delete("x", 1), update("x", 2)]
    assert coalesce_entries(deleted, [0, 0, 0])[1] == [[0], [1], [2]]
    chained = [update("x", 3, a=1), update("x", 4, b=2)]
    wire, members = coalesce_entries(chained, [0, 0])
    assert members == [[0, 1]] and wire[0].item.base_version == 3
