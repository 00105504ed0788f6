"""Optimistic writes and their rollback: exactly the failed change goes, nothing else."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from atoma_actors import BackendUnavailable, ConflictError, create_client
from atoma_actors.core.state import PendingChange, StoreState
from atoma_actors.protocol import (
    Backend,
    Capabilities,
    Endpoint,
    OperationResultError,
    StandardError,
)


def test_failed_write_rolls_back_and_raises(memory):
    with create_client(memory.backend, timeout=10) as c:
        users = c.store("users")
        users.create({"id": "u1", "name": "Ada"})
        rolled = threading.Event()
        c.events.on("change_rolled_back", lambda e: rolled.set())
        memory.faults.configure(error_rate=1.0)
        with pytest.raises(BackendUnavailable):
            users.update("u1", {"name": "Bob"})
        assert users.peek("u1") == {"id": "u1", "name": "Ada", "version": 1}
        assert rolled.wait(5)
        memory.heal()
        assert users.update("u1", {"name": "Cy"})["version"] == 2
        assert memory.snapshot("users")["u1"]["name"] == "Cy"


def test_optimistic_value_is_visible_before_the_ack_then_rolled_back(memory):
    with create_client(memory.backend, timeout=10) as c:
        users = c.store("users")
        users.create({"id": "u1", "n": 0})
        memory.faults.hang(calls=1)
        pending = users.nowait.update("u1", {"n": 1})
        assert memory.faults.wait_hanging(1, timeout=5)
        assert users.peek("u1") == {"id": "u1", "n": 1, "version": 2}
        memory.release()  # the hung call gives up having done nothing
        with pytest.raises(BackendUnavailable):
            pending.result(timeout=5)
        assert users.peek("u1") == {"id": "u1", "n": 0, "version": 1}
        assert memory.snapshot("users")["u1"]["n"] == 0


def test_conflict_rolls_back_with_current(memory):
    with (
        create_client(memory.backend, timeout=10) as a,
        create_client(memory.backend, timeout=10) as b,
    ):
        a.store("docs").create({"id": "d1", "text": "one"})
        b.store("docs").get("d1")
        a.store("docs").update("d1", {"text": "two"})
        with pytest.raises(ConflictError) as info:
            b.store("docs").update("d1", {"text": "three"})
        assert info.value.current is not None
        assert info.value.current.version == 2
        assert b.store("docs").peek("d1")["text"] == "one"
        assert b.store("docs").get("d1", force=True)["text"] == "two"


class Marked:
    """Fails the ops whose values carry `fail`, holds those carrying `hold` until `gate`."""

    def __init__(self, inner):
        self.inner = inner
        self.gate = threading.Event()

    def execute_ops(self, ops, meta, *, deadline=None, context=None):
        values = [
            e.item.value
            for op in ops
            for e in op.write.entries
            if op.kind == "write" and hasattr(e.item, "value")
        ]
        if any(v.get("hold") for v in values):
            self.gate.wait(10)
        if any(v.get("fail") for v in values):
            return [
                OperationResultError(
                    op_id=op.op_id,
                    error=StandardError(
                        code="REFUSED",
                        message="refused by the test",
                        kind="adapter",
                        retryable=True,
                    ),
                )
                for op in ops
            ], 200
        return self.inner.execute_ops(ops, meta, deadline=deadline, context=context)


def test_later_write_to_same_entity_survives_rollback_of_earlier_one(memory):
    """A (an update of x) fails while B (an lww upsert of x, sent after it) is still in
    flight: the rollback of A must leave B's optimistic value visible (a pre-image restore
    would show x0), and B's confirmation must then stand."""
    marked = Marked(memory)
    backend = Backend("marked", store=Endpoint(marked), capabilities=Capabilities("remote"))
    with create_client(backend, timeout=10) as c:
        items = c.store("items")
        items.create({"id": "x", "v": "x0"})
        a = items.nowait.update("x", {"v": "xA", "fail": True})
        b = items.nowait.upsert(
            {"id": "x", "v": "xB", "hold": True}, conflict="lww", apply="replace"
        )
        with pytest.raises(BackendUnavailable):
            a.result(timeout=5)
        assert items.peek("x")["v"] == "xB"  # A rolled back, B still pending: B shows
        marked.gate.set()
        confirmed = b.result(timeout=5)
        assert confirmed["v"] == "xB" and confirmed["version"] == 2
        assert items.peek("x") == confirmed == memory.snapshot("items")["x"]


# -- the rebase state itself, against a model that replays everything from scratch ----------


def test_state_interleaving_direct():
    s = StoreState()
    s.confirm(None, "x", {"v": 0}, 1)
    s.apply(PendingChange((1, 0), "x", "merge", {"v": 1}))
    s.apply(PendingChange((2, 0), "x", "put", {"v": 2}))
    s.confirm((2, 0), "x", {"v": 2}, 2)  # B confirmed by the server first
    s.rollback((1, 0))  # then A fails
    assert s.visible["x"] == {"v": 2, "id": "x", "version": 2}


ops = st.lists(
    st.tuples(
        st.sampled_from(["apply", "confirm", "rollback"]),
        st.sampled_from(["a", "b", "c"]),
        st.sampled_from(["put", "merge", "delete"]),
        st.integers(0, 3),
    ),
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(ops)
def test_state_matches_replay_model(steps):
    state = StoreState()
    confirmed: dict[str, dict] = {}
    pending: list[PendingChange] = []
    seq = 0
    for action, id_, kind, n in steps:
        if action == "apply":
            seq += 1
            change = PendingChange((seq, 0), id_, kind, {"n": n, f"k{n}": seq})
            pending.append(change)
            state.apply(change)
        elif action == "rollback" and pending:
            change = pending.pop(n % len(pending))
            state.rollback(change.key)
        elif action == "confirm" and pending:
            change = pending.pop(n % len(pending))
            version = (confirmed.get(change.id) or {}).get("version", 0) + 1
            value = None if change.kind == "delete" else {"n": n}
            state.confirm(change.key, change.id, value, version)
            if value is None:
                confirmed.pop(change.id, None)
            else:
                confirmed[change.id] = {**value, "id": change.id, "version": version}
        # the model: confirmed state with every pending change replayed in order
        expected: dict[str, dict] = {k: dict(v) for k, v in confirmed.items()}
        for change in pending:
            base = expected.get(change.id)
            if change.kind == "delete":
                expected.pop(change.id, None)
                continue
            fields = dict(change.value or {})
            value = {**base, **fields} if change.kind == "merge" and base else fields
            expected[change.id] = value
        visible = {
            k: {f: v for f, v in e.items() if f != "version"} for k, e in state.visible.items()
        }
        model = {
            k: {f: v for f, v in e.items() if f not in ("version", "id")} | {"id": k}
            for k, e in expected.items()
        }
        assert visible == model


def _full_replay(state: StoreState, pending: list[PendingChange]) -> dict[str, dict]:
    """What readers must see: every entity's confirmed state with its pending changes
    replayed in order, written out independently of `StoreState`'s incremental upkeep."""
    out: dict[str, dict] = {}
    for id_ in set(state.confirmed) | {c.id for c in pending}:
        value = state.confirmed.get(id_)
        tomb = state.tombstones.get(id_, 0)
        for change in (c for c in pending if c.id == id_):
            if change.kind == "delete":
                if value is not None:
                    tomb = value["version"] + 1
                value = None
            elif value is None and change.needs_base:
                value = None
            else:
                version = value["version"] + 1 if value is not None else tomb + 1
                fields = {k: v for k, v in (change.value or {}).items() if k != "id"}
                merged = {**value, **fields} if change.kind == "merge" and value else fields
                value = {**merged, "id": id_, "version": version}
        if value is not None:
            out[id_] = value
    return out


incremental_ops = st.lists(
    st.tuples(
        st.sampled_from(
            ["apply", "confirm_predicted", "confirm_oldest", "confirm", "rollback", "rollback_two"]
        ),
        st.sampled_from(["a", "b"]),
        st.sampled_from(["put", "merge", "delete"]),
        st.integers(0, 5),
        st.booleans(),
    ),
    max_size=50,
)


@settings(max_examples=200, deadline=None)
@given(incremental_ops)
def test_incremental_replay_matches_a_full_replay(steps):
    # Applying replays one change, and confirming the oldest change as predicted changes
    # nothing visible: after any sequence, what readers see is the full replay.
    state = StoreState()
    pending: list[PendingChange] = []
    seq = 0
    for action, id_, kind, n, needs_base in steps:
        if action == "apply":
            seq += 1
            change = PendingChange((seq, 0), id_, kind, {"n": n, f"k{n}": seq}, needs_base)
            pending.append(change)
            state.apply(change)
        elif action == "confirm_predicted" and pending:
            change = next(c for c in pending if c.id == pending[n % len(pending)].id)
            pending.remove(change)
            predicted = _full_replay(state, [change]).get(change.id)
            if predicted is None:
                tomb = state.tombstones.get(change.id, 0)
                if change.id in state.confirmed:
                    tomb = state.confirmed[change.id]["version"] + 1
                state.confirm(change.key, change.id, None, tomb)
            else:
                fields = {k: v for k, v in predicted.items() if k not in ("id", "version")}
                state.confirm(change.key, change.id, fields, predicted["version"])
        elif action == "confirm_oldest" and pending:
            # the oldest change of an entity, answered otherwise than predicted (another
            # writer got there first): the rest must be replayed on the server's value
            change = next(c for c in pending if c.id == pending[n % len(pending)].id)
            pending.remove(change)
            version = (state.confirmed.get(change.id) or {}).get("version", 0) + 2
            value = None if change.kind == "delete" else {"n": -1, "other": True}
            state.confirm(change.key, change.id, value, version)
        elif action == "confirm" and pending:
            change = pending.pop(n % len(pending))
            version = (state.confirmed.get(change.id) or {}).get("version", 0) + 1 + n
            value = None if change.kind == "delete" else {"n": -n}
            state.confirm(change.key, change.id, value, version)
        elif action == "rollback" and pending:
            state.rollback(pending.pop(n % len(pending)).key)
        elif action == "rollback_two" and len(pending) >= 2:
            first, second = pending.pop(n % len(pending)), pending.pop(0)
            with state.batch():  # as a StoreActor handles one message of many answers
                state.rollback(first.key)
                state.rollback(second.key)
        assert dict(state.visible) == _full_replay(state, pending)
