"""`StoreView`: what a store shares with readers on any thread.

`entities` is the StoreActor's own visible dict (`core.state.StoreState.visible`): only the
StoreActor changes it, in place, and never changes an entity once it is in it (a change puts
a new one). So `peek` and cache hits `get` one entity on the caller's thread with no lock and
no actor hop. Whatever lists the whole store takes `lock`, which the StoreActor holds while
it changes the entities and the indexes together; the list is cached until the next change
(`changed()`), so repeated local queries copy nothing.
Must not import client or any backend.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import TYPE_CHECKING, Any

from atoma_actors.core.query import Query, QueryResult, evaluate
from atoma_actors.core.values import copy_json

if TYPE_CHECKING:
    from atoma_actors.core.indexes import IndexSet

__all__ = ["StoreView"]

Entity = dict[str, Any]


class StoreView:
    """The shared face of one store."""

    def __init__(
        self, name: str, indexes: IndexSet | None, *, max_entities: int | None = None
    ) -> None:
        self.name = name
        self.entities: dict[str, Entity] = {}
        self.indexes = indexes
        # With a cache bound: ids read since the StoreActor last looked (it keeps the
        # recently used ones). Appending to a deque is atomic: readers take no lock.
        self.touched: deque[str] | None = deque(maxlen=max_entities) if max_entities else None
        self.lock = threading.Lock()
        self._generation = 0
        self._rows: tuple[int, list[Entity]] | None = None

    def changed(self) -> None:
        """Called by the StoreActor, holding `lock`, after it changed the entities."""
        self._generation += 1

    def peek(self, id_: str) -> Entity | None:
        value = self.entities.get(id_)
        if value is None:
            return None
        if self.touched is not None:
            self.touched.append(id_)
        return copy_json(value)

    def get(self, id_: str) -> Entity | None:
        """The stored entity itself (not a copy): read it, never change it."""
        return self.entities.get(id_)

    def __len__(self) -> int:
        return len(self.entities)

    def _all(self) -> list[Entity]:
        """Every entity, as of one moment (hold `lock`)."""
        cached = self._rows
        if cached is not None and cached[0] == self._generation:
            return cached[1]
        rows = list(self.entities.values())
        self._rows = (self._generation, rows)
        return rows

    def query_local(self, query: Query) -> QueryResult:
        with self.lock:
            candidates = self.indexes.candidates(query) if self.indexes is not None else None
            if candidates is None:
                source: list[Entity] = self._all()
            else:
                get = self.entities.get
                source = [e for e in map(get, candidates) if e is not None]
        result = evaluate(source, query)
        return QueryResult([copy_json(e) for e in result.data], result.page_info, "local")
