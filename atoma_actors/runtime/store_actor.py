"""The StoreActor: one per store, the single writer of its state.

It owns a `core.state.StoreState` (confirmed entities, tombstone versions, the pending log of
optimistic changes, the visible entities) and the store's indexes. It plans write requests into
`PlannedEntry`s (base versions come from its own view, so concurrent writers to one entity line
up), applies them optimistically, hands them to their strategy (a burst of requests in one
message), and on the answer confirms or rolls back exactly those entries.

Readers never queue behind it: its visible entities are shared through the `StoreView`, where
`peek`, cache hits and local queries read them on their own thread. With `local=True` (the
embedded default) the store is its own backend: writes are decided and confirmed here at once.
Messages: `ApplyWrite`, `ReadWriteback`, `RemoteChanges`; its own `_Fetched` and `_Persisted`.
Must not import client or any backend.
"""

from __future__ import annotations

import itertools
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import pykka

from atoma_actors.core.planning import EntrySpec, PlannedEntry, commit_entry, plan_entry
from atoma_actors.core.query import QueryResult, normalize_query
from atoma_actors.core.state import StoreState
from atoma_actors.core.values import copy_json, seal
from atoma_actors.protocol.errors import (
    AtomaError,
    ClientClosed,
    InternalError,
    NotFoundError,
    ValidationError,
    error_from_standard,
)
from atoma_actors.protocol.results import WriteItemError, WriteItemOk

from .actor import Actor
from .messages import (
    ApplyWrite,
    ItemOutcome,
    PersistRequest,
    ReadRequest,
    ReadWriteback,
    RemoteChanges,
    WriteOutcome,
)
from .reply import BatchReply, Reply
from .view import StoreView

__all__ = ["StoreActor"]

log = logging.getLogger("atoma_actors.runtime")

Entity = dict[str, Any]


@dataclass(frozen=True, slots=True)
class _Fetched:
    """The implicit fetch for the write at the head of the queue has answered."""


@dataclass(frozen=True, slots=True)
class _Persisted:
    """Strategy answers for persist requests of this store: `(write_id, outcome)` each (a
    queue batch answers all of its requests from one store in one message)."""

    answers: tuple[tuple[int, Any], ...]


class _Change(NamedTuple):
    id: str
    entity: Entity | None
    version: int


@dataclass(slots=True)
class _InFlight:
    """A write request sent on: its planned entries (None where planning refused one, whose
    error already sits in `results`). Entry `i`'s pending change, if optimistic, is
    `(write_id, i)`."""

    write_id: int
    entries: tuple[PlannedEntry | None, ...]
    results: list[Entity | AtomaError | None] | None
    """None until answered, when nothing was refused at planning (the usual case)."""
    reply: Reply[WriteOutcome]
    optimistic: bool


_OUTBOX_LIMIT = 256  # persist requests held at most while more messages wait


def _error(result: WriteItemError) -> AtomaError:
    return error_from_standard(result.error, current=result.current)


class StoreActor(Actor):
    def __init__(
        self,
        name: str,
        view: StoreView,
        *,
        persist: Callable[[list[PersistRequest]], None],
        emit: Callable[..., None],
        time_ms: Callable[[], int],
        model: Any = None,
        fetch: Callable[[ReadRequest], None] | None = None,
        local: bool = False,
        max_entities: int | None = None,
    ) -> None:
        super().__init__()
        self._local = local
        self._fetch = fetch
        self._deferred: list[tuple[ApplyWrite, bool]] = []
        self._fetching = False
        self._name = name
        self._view = view
        self._persist = persist
        self._emit = emit
        self._time_ms = time_ms
        self._validate = _model_check(name, model)
        indexes = view.indexes
        self._state = StoreState(
            on_visible_change=self._index_change if indexes else None,
            max_confirmed=max_entities,
        )
        view.entities = self._state.visible
        self._seq = itertools.count(1)
        self._inflight: dict[int, _InFlight] = {}
        # Idempotency keys: one random prefix per actor plus a counter is as unique as a
        # uuid4 per entry, without an os.urandom call per write (the cost of a whole write).
        self._key_prefix = uuid.uuid4().hex
        self._key_seq = itertools.count(1)
        me = self.actor_ref

        def persisted(answers: list[tuple[int, Any]]) -> None:
            me.tell(_Persisted(tuple(answers)))

        self._persisted_sink = persisted  # the queue groups answers by sink (one per actor)
        # Persist requests of a burst of writes, sent together once the inbox is empty.
        self._outbox: list[PersistRequest] = []

    def _next_key(self) -> str:
        return f"{self._key_prefix}-{next(self._key_seq):x}"

    # -- messages ------------------------------------------------------------------------
    def on_receive(self, message: Any) -> None:
        try:
            self._receive(message)
        finally:
            if self._outbox and (len(self._outbox) >= _OUTBOX_LIMIT or self.actor_inbox.empty()):
                self._send_outbox()

    def _send_outbox(self) -> None:
        outbox, self._outbox = self._outbox, []
        try:
            self._persist(outbox)
        except pykka.ActorDeadError:  # a strategy has stopped: the client is closing
            for request in outbox:
                request.reply(ClientClosed("client closed"))

    def _receive(self, message: Any) -> None:
        if isinstance(message, ApplyWrite):
            self._deferred.append((message, False))
            self._drain()
        elif isinstance(message, _Fetched):
            self._fetching = False
            self._deferred[0] = (self._deferred[0][0], True)
            self._drain()
        elif isinstance(message, _Persisted):
            self._persisted(message.answers)
        elif isinstance(message, ReadWriteback):
            self._read_writeback(message)
        elif isinstance(message, RemoteChanges):
            self._remote_changes(message)

    def on_failure(self, exception_type: Any, exception_value: Any, traceback: Any) -> None:
        log.error("store actor %s failed: %r", self._name, exception_value)
        self._answer_all(InternalError(f"store actor {self._name} failed: {exception_value!r}"))

    def on_stop(self) -> None:
        self._answer_all(ClientClosed("client closed before the write was answered"))

    def _answer_all(self, error: AtomaError) -> None:
        """Every write this actor still holds gets `error` (each caller exactly once)."""
        flights, self._inflight = list(self._inflight.values()), {}
        deferred, self._deferred = self._deferred, []
        for flight in flights:
            flight.reply(error)
        for msg, _ in deferred:
            msg.reply(error)

    # -- writes --------------------------------------------------------------------------
    def _drain(self) -> None:
        """Apply queued writes in arrival order. A write touching entities this store has
        never seen first fetches them (implicit fetch) and everything behind it waits, so a
        create followed at once by an update of the same entity keeps its order."""
        while self._deferred and not self._fetching:
            msg, fetched = self._deferred[0]
            unknown = (
                []
                if fetched or self._fetch is None
                else sorted(
                    {
                        s.id
                        for s in msg.specs
                        if s.action != "create" and s.id not in self._state.visible
                    }
                )
            )
            if unknown:
                self._fetching = True
                self._request_fetch(unknown, msg)
                return
            self._deferred.pop(0)
            self._apply_write(msg)

    def _request_fetch(self, ids: list[str], msg: ApplyWrite) -> None:
        me = self.actor_ref
        query = normalize_query({"filter": {"op": "in", "field": "id", "values": ids}})
        assert self._fetch is not None
        try:
            self._fetch(
                ReadRequest(
                    store=self._name,
                    query=query,
                    reply=Reply(lambda _outcome: me.tell(_Fetched())),
                    view=self._view,
                    store_ref=me,
                    context=msg.context,
                    deadline=msg.deadline,
                )
            )
        except pykka.ActorDeadError:  # closing: the write behind it will meet the same end
            me.tell(_Fetched())

    def _apply_write(self, msg: ApplyWrite) -> None:
        if self._local:
            self._commit_now(msg)
            return
        write_id = next(self._seq)
        now_ms = self._time_ms()
        planned: list[PlannedEntry | None] = []
        results: list[Entity | AtomaError | None] = []
        with self._view.lock:
            for index, spec in enumerate(msg.specs):
                try:
                    entry, change = self._plan(spec, now_ms, (write_id, index))
                except AtomaError as exc:
                    planned.append(None)
                    results.append(exc)
                    continue
                planned.append(entry)
                results.append(None)
                if msg.optimistic:
                    self._state.apply(change)
            self._publish()
        entries = tuple(e for e in planned if e is not None)
        if msg.optimistic and entries:
            self._emit("change_optimistic", store=self._name, ids=[e.id for e in entries])
        if not entries:
            msg.reply(WriteOutcome(tuple(results)))
            return
        self._inflight[write_id] = _InFlight(
            write_id,
            tuple(planned),
            None if len(entries) == len(planned) else results,
            msg.reply,
            msg.optimistic,
        )
        self._outbox.append(
            PersistRequest(
                store=self._name,
                entries=entries,
                reply=BatchReply(self._persisted_sink, write_id),
                strategy=msg.strategy,
                context=msg.context,
                deadline=msg.deadline,
            )
        )

    def _plan(self, spec: EntrySpec, now_ms: int, key: tuple[int, int]) -> tuple[PlannedEntry, Any]:
        return plan_entry(
            spec,
            self._state.visible.get(spec.id),
            store=self._name,
            key=key,
            idempotency_key=self._next_key(),
            client_time_ms=now_ms,
            validate=self._validate,
        )

    def _commit_now(self, msg: ApplyWrite) -> None:
        """The store is its own backend (the embedded default): decide and confirm every
        entry at once; the caller gets copies of what was stored."""
        name, validate = self._name, self._validate

        def decide(spec: EntrySpec, current: Entity | None, tomb: int) -> Entity | None:
            return commit_entry(spec, current, tomb, store=name, validate=validate)

        with self._view.lock:
            stored = self._state.commit_now(msg.specs, decide)
            self._publish()
        results: list[Entity | AtomaError | None] = []
        ids: list[str] = []
        for spec, item in zip(msg.specs, stored, strict=True):
            if isinstance(item, AtomaError):
                results.append(item)
            else:
                results.append(copy_json(item) if item is not None else None)
                ids.append(spec.id)
        if ids:
            self._emit("change_optimistic", store=name, ids=ids)
            self._emit("change_committed", store=name, ids=ids)
        msg.reply(WriteOutcome(tuple(results)))

    def _persisted(self, answers: tuple[tuple[int, Any], ...]) -> None:
        """Confirm or roll back the entries of every write answered, as one change of state
        (rollbacks replay each entity once, however many of its writes failed together)."""
        settled = []
        with self._view.lock:
            with self._state.batch():
                for write_id, outcome in answers:
                    flight = self._inflight.pop(write_id, None)
                    if flight is not None:
                        settled.append((flight, *self._settle(flight, outcome)))
            self._publish()
        for flight, committed, failed in settled:
            if committed:
                self._emit("change_committed", store=self._name, ids=committed)
            if failed and flight.optimistic:
                self._emit("change_rolled_back", store=self._name, ids=failed)
            flight.reply(WriteOutcome(tuple(flight.results or ())))

    def _settle(self, flight: _InFlight, outcome: Any) -> tuple[list[str], list[str]]:
        """Apply one write's answer to the state; its results go into `flight.results`.
        Returns the ids committed and the ids that failed."""
        sent = [i for i, e in enumerate(flight.entries) if e is not None]
        if isinstance(outcome, BaseException) or len(outcome) != len(sent):
            if not isinstance(outcome, BaseException):
                outcome = ValidationError("strategy answered the wrong number of items")
            outcomes: list[ItemOutcome] = [outcome] * len(sent)
        else:
            outcomes = list(outcome)
        committed: list[str] = []
        failed: list[str] = []
        if flight.results is None:
            flight.results = [None] * len(flight.entries)
        results = flight.results
        for index, item in zip(sent, outcomes, strict=True):
            entry = flight.entries[index]
            assert entry is not None
            key = (flight.write_id, index) if flight.optimistic else None
            id_ = entry.id
            if isinstance(item, WriteItemOk):
                value = (
                    None
                    if entry.action == "delete"
                    else (item.data if item.data is not None else dict(entry.value or {}))
                )
                visible = self._state.confirm(key, id_, value, item.version)
                results[index] = (
                    None
                    if value is None
                    else copy_json(
                        visible
                        if visible is not None and visible.get("version") == item.version
                        else {**value, "id": id_, "version": item.version}
                    )
                )
                committed.append(id_)
            else:
                error = _error(item) if isinstance(item, WriteItemError) else item
                if not isinstance(error, AtomaError):
                    error = _wrap(error)
                if key is not None:
                    self._state.rollback(key)
                if isinstance(error, NotFoundError) and not self._state.has_pending(id_):
                    self._state.forget_missing(id_, None)
                results[index] = error
                failed.append(id_)
        return committed, failed

    def _remote_changes(self, msg: RemoteChanges) -> None:
        with self._view.lock:
            if self._local:
                # No confirmed copy to compare with: visible is the confirmed state.
                def newer(change: _Change, current: Entity | None, tomb: int) -> Entity | None:
                    known = current["version"] if current is not None else tomb
                    if change.version <= known:
                        return current
                    return None if change.entity is None else seal(copy_json(change.entity))

                changes = [
                    _Change(e["id"], e, e["version"])
                    for e in msg.upserts
                    if isinstance(e.get("id"), str) and type(e.get("version")) is int
                ]
                changes += [_Change(id_, None, version) for id_, version in msg.deletes]
                self._state.commit_now(changes, newer)
            else:
                self._state.merge_fetched(msg.upserts)
                for id_, version in msg.deletes:
                    self._state.confirm(None, id_, None, version)
            self._publish()
        msg.reply(len(msg.upserts) + len(msg.deletes))

    # -- reads ---------------------------------------------------------------------------
    def _read_writeback(self, msg: ReadWriteback) -> None:
        with self._view.lock:
            self._state.merge_fetched(msg.data)
            if msg.missing_id is not None and not self._state.has_pending(msg.missing_id):
                self._state.forget_missing(msg.missing_id, msg.missing_version)
            self._publish()
        msg.reply(QueryResult([copy_json(e) for e in msg.data], msg.page_info, msg.source))

    # -- publication ---------------------------------------------------------------------
    def _index_change(self, id_: str, old: Entity | None, new: Entity | None) -> None:
        indexes = self._view.indexes
        assert indexes is not None
        if old is None and new is not None:
            indexes.add(new)
        elif old is not None and new is None:
            indexes.remove(old)
        elif old is not None and new is not None:
            indexes.replace(old, new)

    def _publish(self) -> None:
        touched = self._view.touched
        if touched is not None:
            used = []
            while touched:
                used.append(touched.popleft())
            self._state.touch(used)
            self._state.evict()
        self._view.changed()


def _model_check(name: str, model: Any) -> Callable[[Entity], Entity] | None:
    """The store's pydantic model as a check that raises our `ValidationError`."""
    if model is None:
        return None

    def validate(value: Entity) -> Entity:
        try:
            model.model_validate(value)
        except Exception as exc:
            raise ValidationError(f"{name}: {exc}") from exc
        return value

    return validate


def _wrap(exc: BaseException) -> AtomaError:
    return InternalError(f"{type(exc).__name__}: {exc}")
