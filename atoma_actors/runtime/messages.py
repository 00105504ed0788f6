"""The messages actors exchange: what the facade, the StoreActor and the strategies send
each other. Each is a frozen, slotted dataclass carrying its `Reply`.

An actor's private messages to itself (timers firing, its own replies coming back) stay in
its module. Must not import client or any backend.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from atoma_actors.core.planning import EntrySpec, PlannedEntry
from atoma_actors.core.query import Query, QueryResult
from atoma_actors.protocol.errors import AtomaError
from atoma_actors.protocol.results import PageInfo, WriteItemError, WriteItemOk

from .reply import Reply

if TYPE_CHECKING:
    import pykka

    from .view import StoreView

__all__ = [
    "ApplyWrite",
    "EntrySpec",
    "ItemOutcome",
    "PersistBatch",
    "PersistRequest",
    "ReadRequest",
    "ReadWriteback",
    "RemoteChanges",
    "WriteOutcome",
]

Entity = dict[str, Any]
ItemOutcome = WriteItemOk | WriteItemError | BaseException
"""What a strategy answers for one persisted entry."""


@dataclass(frozen=True, slots=True)
class WriteOutcome:
    """Per-entry outcomes of one write request, aligned with its specs."""

    items: tuple[Entity | AtomaError | None, ...]


@dataclass(frozen=True, slots=True)
class ApplyWrite:
    """Facade → StoreActor: apply these writes (optimistically unless told otherwise)."""

    specs: tuple[EntrySpec, ...]
    reply: Reply[WriteOutcome]
    strategy: str | None = None
    optimistic: bool = True
    context: dict[str, Any] = field(default_factory=dict)
    deadline: float | None = None


@dataclass(frozen=True, slots=True)
class PersistRequest:
    """StoreActor → strategy: planned entries with their idempotency keys (the strategy
    makes them protocol entries as it builds ops). The reply gets one outcome per entry
    (or one exception for all)."""

    store: str
    entries: tuple[PlannedEntry, ...]
    reply: Reply[Any]
    strategy: str | None
    context: dict[str, Any]
    deadline: float | None


@dataclass(frozen=True, slots=True)
class PersistBatch:
    """StoreActor → strategy: several persist requests in one message (a StoreActor that
    applied a burst of writes hands them over together: one hop instead of one each).
    A strategy treats them exactly as if they had come one by one, in this order."""

    requests: tuple[PersistRequest, ...]


@dataclass(frozen=True, slots=True)
class ReadRequest:
    """Facade or StoreActor → strategy: a read; `view` and `store_ref` let the
    strategy fall back to the local engine and write the answer back."""

    store: str
    query: Query
    reply: Reply[Any]
    view: StoreView
    store_ref: pykka.ActorRef[Any]
    strategy: str | None = None
    context: dict[str, Any] = field(default_factory=dict)
    deadline: float | None = None
    missing_id: str | None = None
    missing_version: int | None = None
    """With `missing_id`: the version this client saw when it asked; a "not found" answer
    only forgets the entity if nothing newer was confirmed since."""


@dataclass(frozen=True, slots=True)
class ReadWriteback:
    """Strategy → StoreActor: entities read from the backend; cache them, answer the reader."""

    query: Query
    data: list[Entity]
    page_info: PageInfo
    reply: Reply[QueryResult]
    missing_id: str | None = None
    missing_version: int | None = None
    source: str = "remote"


@dataclass(frozen=True, slots=True)
class RemoteChanges:
    """Plugin (sync) → StoreActor: changes made elsewhere; cache the upserts, apply the
    deletes as confirmed."""

    upserts: list[Entity]
    deletes: list[tuple[str, int]]
    reply: Reply[int]
