"""`StoreView`: what a store publishes for lock-free reads on any thread.

The StoreActor replaces `snapshot` (an immutable map, never changed in place) after every
change; `peek`, cache hits and local queries read it on the caller's own thread, no actor hop.
`lock` is held by the StoreActor while the snapshot and the store's indexes change together,
and by readers only while they ask the index planner for candidate ids.
Must not import client or any backend.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from atoma_actors.core.query import Query, QueryResult, evaluate
from atoma_actors.core.values import copy_json

if TYPE_CHECKING:
    from atoma_actors.core.indexes import IndexSet

__all__ = ["StoreView"]

Entity = dict[str, Any]


class StoreView:
    """The published state of one store."""

    def __init__(self, name: str, indexes: IndexSet | None) -> None:
        self.name = name
        self.snapshot: Mapping[str, Entity] = {}
        self.indexes = indexes
        self.lock = threading.Lock()
        # The snapshot's entities as a list, built on the first full scan after a change:
        # a comprehension over a list runs about twice as fast as over the map's values.
        self._rows: tuple[Mapping[str, Entity], list[Entity]] | None = None

    def peek(self, id_: str) -> Entity | None:
        value = self.snapshot.get(id_)
        return copy_json(value) if value is not None else None

    def rows(self, snapshot: Mapping[str, Entity]) -> list[Entity]:
        """Every entity of `snapshot` (a map this view published), as a list."""
        cached = self._rows
        if cached is not None and cached[0] is snapshot:
            return cached[1]
        rows = list(snapshot.values())
        self._rows = (snapshot, rows)
        return rows

    def query_local(self, query: Query) -> QueryResult:
        if self.indexes is None:
            snapshot = self.snapshot
            candidates = None
        else:
            with self.lock:
                snapshot = self.snapshot
                candidates = self.indexes.candidates(query)
        if candidates is None:
            result = evaluate(self.rows(snapshot), query)
        else:
            result = evaluate(snapshot, query, candidates=candidates)
        return QueryResult([copy_json(e) for e in result.data], result.page_info, "local")
