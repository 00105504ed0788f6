"""Optimistic store state as a rebase: confirmed entities plus an ordered log of pending changes.

What readers see (`visible`) is the confirmed state with every pending change replayed in
order. Rolling back a change drops it from the log and recomputes only the entities it touched,
so changes made alongside it (and confirmations that arrived meanwhile) survive. Restoring a
pre-image instead is the classic bug that loses them.

`visible` is a plain dict that only its owner (the StoreActor) changes, in place and entity by
entity: the entities in it are never changed once there (a change puts a new dict), so a
reader on another thread may `get` one at any time; whoever lists the whole dict must hold
the lock the owner holds while it changes it (`runtime.view.StoreView.lock`). Insertion
order is kept, so a bulk-loaded store is scanned in the order its entities sit in memory.
Must not import runtime, client or any backend.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar

from atoma_actors.core.values import fields_of, seal
from atoma_actors.protocol.errors import AtomaError

__all__ = ["ChangeKey", "PendingChange", "StoreState"]

Entity = dict[str, Any]


class _Keyed(Protocol):
    @property
    def id(self) -> str: ...


T = TypeVar("T", bound=_Keyed)
ChangeKey = tuple[int, int]
"""`(write sequence, entry index)`: unique per pending change, ordered by arrival."""


@dataclass(frozen=True, slots=True)
class PendingChange:
    """One optimistic change. `put` replaces the value, `merge` patches it, `delete` removes.
    An update `needs_base`: replayed onto nothing (its create was rolled back), it shows
    nothing rather than inventing an entity that never existed anywhere."""

    key: ChangeKey
    id: str
    kind: Literal["put", "merge", "delete"]
    value: Entity | None = None
    needs_base: bool = False


_Replayed = tuple["Entity | None", int]
"""What the replay holds after a change: the entity (None: none), and the version a create
would start past (the tombstone)."""


def _step(state: _Replayed, change: PendingChange) -> _Replayed:
    """Replay one change."""
    base, tomb = state
    if change.kind == "delete":
        if base is not None:
            tomb = base["version"] + 1  # a re-create continues past the delete
        return None, tomb
    if base is None and change.needs_base:
        return None, tomb
    version = base["version"] + 1 if base is not None else tomb + 1
    fields = fields_of(change.value)
    merged = {**base, **fields} if change.kind == "merge" and base is not None else fields
    merged["id"] = change.id
    merged["version"] = version
    return seal(merged), tomb


def _same_step(predicted: _Replayed, value: Entity | None, tomb: int) -> bool:
    """Whether the confirmed state is what the replay predicted (equal values; for nothing,
    the same tombstone, which a later create would continue from)."""
    if predicted[0] is None:
        return value is None and predicted[1] == tomb
    return value == predicted[0]


class StoreState:
    """Confirmed state + pending log; `visible` is what readers see."""

    def __init__(
        self,
        on_visible_change: Callable[[str, Entity | None, Entity | None], None] | None = None,
        *,
        max_confirmed: int | None = None,
    ) -> None:
        """`max_confirmed` bounds the confirmed entities (and, apart, the tombstones) kept:
        `evict()` drops the least recently used confirmed ones that have no pending change."""
        self.confirmed: dict[str, Entity] = {}
        self.tombstones: dict[str, int] = {}
        self._pending: dict[ChangeKey, PendingChange] = {}
        self._pending_by_id: dict[str, list[ChangeKey]] = {}
        self._predicted: dict[ChangeKey, _Replayed] = {}
        self._tail: dict[str, _Replayed] = {}
        self._dirty: set[str] | None = None  # inside batch(): ids to replay at its end
        self.visible: dict[str, Entity] = {}
        self._on_change = on_visible_change
        self._max = max_confirmed
        # Confirmed ids, least recently used first (only with a bound).
        self._lru: OrderedDict[str, None] | None = OrderedDict() if max_confirmed else None

    # -- reading -------------------------------------------------------------------------
    def has_pending(self, id_: str) -> bool:
        return id_ in self._pending_by_id

    # -- optimistic changes --------------------------------------------------------------
    # Each pending change remembers what the replay gave after it (`_predicted`), and each
    # entity with pending changes the replay's end (`_tail`): applying a change replays that
    # one change only, and confirming the oldest one as predicted changes nothing visible.
    # Either costs O(1) however many changes of one entity are pending; a rollback, or an
    # answer the prediction did not foresee, replays the entity's changes again.
    def apply(self, change: PendingChange) -> Entity | None:
        """Add a pending change at the end of the log; returns the new visible entity."""
        id_ = change.id
        self._pending[change.key] = change
        keys = self._pending_by_id.setdefault(id_, [])
        keys.append(change.key)
        if len(keys) == 1:
            start = (self.confirmed.get(id_), self.tombstones.get(id_, 0))
        else:
            start = self._tail[id_]
        self._predicted[change.key] = self._tail[id_] = end = _step(start, change)
        self._show(id_, end[0])
        return end[0]

    def rollback(self, key: ChangeKey) -> Entity | None:
        """Drop a pending change and recompute its entity from what is left (inside
        `batch()`, once at its end)."""
        change = self._drop(key)
        if change is None:
            return None
        if self._dirty is not None:
            self._dirty.add(change.id)
            return None
        return self._recompute(change.id)

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Changes made inside replay each entity rolled back once, at the end (many
        answers for one entity handled together stay linear)."""
        self._dirty = set()
        try:
            yield
        finally:
            dirty, self._dirty = self._dirty, None
            for id_ in dirty:
                self._recompute(id_)

    def confirm(
        self, key: ChangeKey | None, id_: str, value: Entity | None, version: int
    ) -> Entity | None:
        """The backend acknowledged a change: `value` (None for a delete) at `version` becomes
        confirmed, the pending change (if any) leaves the log, the entity is recomputed."""
        keys = self._pending_by_id.get(id_)
        oldest = key is not None and keys is not None and keys[0] == key
        predicted = self._predicted.get(key) if key is not None else None
        if key is not None:
            self._drop(key)
        self._set_confirmed(id_, value, version)
        if self._dirty is not None and id_ in self._dirty:
            self._dirty.discard(id_)  # rolled back in this batch: predictions are stale
        elif (
            oldest
            and predicted is not None
            and id_ in self._pending_by_id
            and _same_step(predicted, self.confirmed.get(id_), self.tombstones.get(id_, 0))
        ):
            # The server gave what the replay predicted for the oldest change: replaying the
            # others on it gives what they already show.
            return self.visible.get(id_)
        return self._recompute(id_)

    # -- a store that is its own backend ------------------------------------------------
    def commit_now(
        self, items: Iterable[T], decide: Callable[[T, Entity | None, int], Entity | None]
    ) -> list[Entity | AtomaError | None]:
        """Decide and confirm each item at once, in order (the embedded default: nothing is
        ever pending, so `visible` *is* the confirmed state and no second copy is kept).

        `decide(item, current, tomb_version)` returns the new entity (its id and version
        set), None to delete, or raises an `AtomaError`, which becomes that item's outcome
        and changes nothing. Each item sees the ones before it."""
        visible = self.visible
        tombstones = self.tombstones
        on_change = self._on_change
        out: list[Entity | AtomaError | None] = []
        for item in items:
            try:
                id_ = item.id
                old = visible.get(id_)
                new = decide(item, old, tombstones.get(id_, 0))
            except AtomaError as exc:
                out.append(exc)
                continue
            if new is None:
                if old is not None:
                    tombstones[id_] = old["version"] + 1
                    del visible[id_]
            elif new is not old:
                visible[id_] = new
            if on_change is not None and old is not new:
                on_change(id_, old, new)
            out.append(new)
        return out

    # -- reads from the backend ----------------------------------------------------------
    def merge_fetched(self, entities: Iterable[Entity]) -> None:
        """Cache entities read from the backend, never replacing a newer confirmed version."""
        for entity in entities:
            id_ = entity.get("id")
            version = entity.get("version")
            if not isinstance(id_, str) or not isinstance(version, int):
                continue
            known = self.confirmed.get(id_)
            if known is not None and known.get("version", 0) >= version:
                continue
            if self.tombstones.get(id_, 0) >= version:
                continue
            self._set_confirmed(id_, entity, version)
            self._recompute(id_)

    def forget_missing(self, id_: str, seen_version: int | None) -> None:
        """The backend says `id_` does not exist: drop it from the confirmed cache, unless
        a version other than `seen_version` (what the asker saw; None: any) was confirmed
        since the question was asked — then the answer is older than what we know."""
        known = self.confirmed.get(id_)
        if known is None:
            return
        if seen_version is not None and known.get("version") != seen_version:
            return
        del self.confirmed[id_]
        if self._lru is not None:
            self._lru.pop(id_, None)
        self._recompute(id_)

    # -- the cache bound -----------------------------------------------------------------
    def touch(self, ids: Iterable[str]) -> None:
        """These confirmed entities were just used: they are evicted last."""
        lru = self._lru
        if lru is None:
            return
        for id_ in ids:
            if id_ in lru:
                lru.move_to_end(id_)

    def evict(self) -> list[str]:
        """Drop least recently used confirmed entities (never one with a pending change)
        until at most `max_confirmed` are held; the same bound trims the oldest tombstones.
        Returns the ids no longer shown."""
        lru, limit = self._lru, self._max
        if lru is None or limit is None:
            return []
        evicted: list[str] = []
        skipped = 0
        while len(self.confirmed) > limit and skipped < len(lru):
            id_ = next(iter(lru))
            if id_ in self._pending_by_id:
                lru.move_to_end(id_)  # still changing: keep it, look further
                skipped += 1
                continue
            del lru[id_]
            del self.confirmed[id_]
            self._recompute(id_)
            evicted.append(id_)
        tombstones = self.tombstones
        while len(tombstones) > limit:
            del tombstones[next(iter(tombstones))]
        return evicted

    # -- internals -----------------------------------------------------------------------
    def _set_confirmed(self, id_: str, value: Entity | None, version: int) -> None:
        lru = self._lru
        if value is None:
            self.confirmed.pop(id_, None)
            self.tombstones[id_] = max(version, self.tombstones.get(id_, 0))
            if lru is not None:
                lru.pop(id_, None)
        else:
            self.confirmed[id_] = seal({**value, "id": id_, "version": version})
            if lru is not None:
                lru[id_] = None
                lru.move_to_end(id_)

    def _drop(self, key: ChangeKey) -> PendingChange | None:
        change = self._pending.pop(key, None)
        if change is None:
            return None
        del self._predicted[key]
        keys = self._pending_by_id[change.id]
        keys.remove(key)
        if not keys:
            del self._pending_by_id[change.id]
            del self._tail[change.id]
        return change

    def _recompute(self, id_: str) -> Entity | None:
        """Replay every pending change of `id_` over its confirmed state."""
        state: _Replayed = (self.confirmed.get(id_), self.tombstones.get(id_, 0))
        keys = self._pending_by_id.get(id_)
        if keys:
            for key in keys:
                state = self._predicted[key] = _step(state, self._pending[key])
            self._tail[id_] = state
        return self._show(id_, state[0])

    def _show(self, id_: str, value: Entity | None) -> Entity | None:
        """Make `value` what readers see of `id_` (None: nothing)."""
        old = self.visible.get(id_)
        if value is None:
            if old is not None:
                del self.visible[id_]
        elif value is not old:
            self.visible[id_] = value
        if self._on_change is not None and old is not value:
            self._on_change(id_, old, value)
        return value
