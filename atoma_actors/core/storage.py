"""`MemoryStorage`: a pure, thread-safe, in-memory storage engine that executes protocol ops.

It holds, per resource, the rows (tombstones kept, so versions only grow across delete and
re-create), the idempotency keys of applied writes, and one change log with a global monotonic
cursor for `changes.pull`. Write rules come from `core.writes.apply_entry` and queries from
`core.query.evaluate`; this module adds only bookkeeping around them. It satisfies
`protocol.backend.OpsClient` and `protocol.backend.NotifySource`, so the memory backend, the
local engine and test harnesses can all use it directly.

Everything it returns is a copy: callers may mutate what they get.
Must not import runtime, client or any backend.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sortedcontainers import SortedDict

from atoma_actors.core.query import evaluate, normalize_query
from atoma_actors.core.values import copy_json
from atoma_actors.core.writes import Row, apply_entry
from atoma_actors.protocol.backend import OpsOutcome
from atoma_actors.protocol.errors import AtomaError, ValidationError
from atoma_actors.protocol.listeners import Listeners
from atoma_actors.protocol.ops import ChangesPullOp, Meta, Operation, QueryOp, WriteOp
from atoma_actors.protocol.results import (
    Change,
    ChangeBatch,
    NotifyMessage,
    OperationResult,
    OperationResultError,
    OperationResultOk,
    QueryResultData,
    WriteItemOk,
    WriteItemResult,
    WriteResultData,
)

__all__ = ["DEFAULT_IDEMPOTENCY_TTL", "DEFAULT_PULL_LIMIT", "MAX_PULL_LIMIT", "MemoryStorage"]

_log = logging.getLogger("atoma_actors.core.storage")

DEFAULT_IDEMPOTENCY_TTL = 86_400.0
DEFAULT_PULL_LIMIT = 100
MAX_PULL_LIMIT = 10_000


_Applied = tuple[str, int, "dict[str, Any] | None", float]


_LogEntry = tuple[str, str, str, int, int]
"""`(resource, id, kind, version, changed_at_ms)`: a plain tuple of plain values, which the
collector stops tracking, however long the log."""


class _Resource:
    """The state of one resource; only touched with the storage lock held."""

    __slots__ = ("live", "rows")

    def __init__(self) -> None:
        self.rows: dict[str, Row] = {}
        # Live entities by id, kept beside `rows` so a query needs no filtering pass.
        self.live: dict[str, dict[str, Any]] = {}


class MemoryStorage:
    """Rows, idempotency keys and a change log for any number of resources, behind one lock.

    `id_factory` names id-less creates (default: uuid4 hex). `clock` returns seconds since the
    epoch (default `time.time`); it stamps changes and ages idempotency keys. At most
    `idempotency_limit` keys are kept (the oldest are forgotten first) and none longer than
    `idempotency_ttl` seconds (default a day; None: no age limit).

    The change log keeps the latest change per entity (what `changes.pull` needs). With
    `change_log_limit`, it keeps at most that many, dropping the oldest; a pull from a cursor
    older than what is left is refused (`INVALID_CURSOR`, hint `resync`): that reader must
    read everything again, then pull from the head.
    """

    def __init__(
        self,
        *,
        id_factory: Callable[[], str] | None = None,
        clock: Callable[[], float] | None = None,
        idempotency_limit: int = 100_000,
        idempotency_ttl: float | None = DEFAULT_IDEMPOTENCY_TTL,
        change_log_limit: int | None = None,
    ) -> None:
        if idempotency_limit < 0:
            raise ValidationError("idempotency_limit must be >= 0")
        if idempotency_ttl is not None and idempotency_ttl <= 0:
            raise ValidationError("idempotency_ttl must be > 0 seconds (or None)")
        if change_log_limit is not None and change_log_limit < 1:
            raise ValidationError("change_log_limit must be >= 1 (or None)")
        self._lock = threading.Lock()
        self._id_factory = id_factory or (lambda: uuid.uuid4().hex)
        self._clock = clock or time.time
        self._idem_limit = idempotency_limit
        self._idem_ttl = idempotency_ttl
        self._resources: dict[str, _Resource] = {}
        # (resource, key) -> (id, version, data, time stored); insertion order = age. Plain
        # tuples of plain values: the collector stops tracking them, however many are kept.
        self._idem: OrderedDict[tuple[str, str], _Applied] = OrderedDict()
        # The change log keeps only the latest change per (resource, id): a row's earlier
        # changes are superseded, so the log is bounded by the number of ids ever written.
        self._seq = 0
        self._log: SortedDict = SortedDict()  # seq -> _LogEntry
        self._log_pos: dict[tuple[str, str], int] = {}
        self._log_limit = change_log_limit
        self._log_floor = 0  # every change at or below this sequence number was trimmed
        self._listeners: Listeners[NotifyMessage] = Listeners()

    # -- the ops client ---------------------------------------------------------------

    def execute_ops(
        self,
        ops: Sequence[Operation],
        meta: Meta,
        *,
        deadline: float | None = None,
        context: dict[str, Any] | None = None,
    ) -> OpsOutcome:
        """Run `ops` in order; one result per op. A bad op fails alone (an error result)."""
        del deadline, context  # in-memory work is quick; nothing to cut short or pass on
        results: list[OperationResult] = []
        touched: list[str] = []
        with self._lock:
            for op in ops:
                results.append(self._run_op(op, touched))
        if touched:
            self._notify(NotifyMessage(resources=touched, trace_id=meta.trace_id))
        return results, 200

    def _run_op(self, op: Operation, touched: list[str]) -> OperationResult:
        try:
            if isinstance(op, WriteOp):
                return OperationResultOk(op_id=op.op_id, data=self._write(op, touched))
            if isinstance(op, QueryOp):
                return OperationResultOk(op_id=op.op_id, data=self._query(op))
            if isinstance(op, ChangesPullOp):
                return OperationResultOk(op_id=op.op_id, data=self._pull(op))
            raise ValidationError(f"unknown op kind: {type(op).__name__}")
        except AtomaError as exc:
            return OperationResultError(op_id=op.op_id, error=exc.error)

    # -- writes -----------------------------------------------------------------------

    def _write(self, op: WriteOp, touched: list[str]) -> WriteResultData:
        name = op.write.resource
        res = self._resources.get(name)
        if res is None:
            res = self._resources[name] = _Resource()
        now = self._clock()
        self._expire_keys(now)
        results: list[WriteItemResult] = []
        wrote = False
        for entry in op.write.entries:
            key = (name, entry.item.meta.idempotency_key)
            seen = self._idem.get(key)
            if seen is not None:
                results.append(_ok_copy(*seen[:3]))
                continue
            target = entry.item.id
            new_id = None if target is not None else self._fresh_id(res)
            row_id = target if target is not None else new_id
            current = res.rows.get(row_id) if row_id is not None else None
            decision = apply_entry(entry, current, resource=name, new_id=new_id)
            if decision.row is not None:
                self._store(name, res, decision.row, now)
                wrote = True
            result = decision.result
            if isinstance(result, WriteItemOk):
                # Only applied writes are remembered: a refused write changed nothing,
                # so running it again is harmless and reports what is true now. The
                # decision's own result is kept; the caller gets a copy.
                self._remember(key, result, now)
                result = _ok_copy(result.id, result.version, result.data)
            results.append(result)
        if wrote and name not in touched:
            touched.append(name)
        return WriteResultData(transaction_applied=False, results=results)

    def _fresh_id(self, res: _Resource) -> str:
        id_ = self._id_factory()
        while id_ in res.rows:  # a factory that repeats itself must not clobber a row
            id_ = self._id_factory()
        return id_

    def _store(self, name: str, res: _Resource, row: Row, now: float) -> None:
        value = copy_json(row.value)
        row = Row(id=row.id, version=row.version, value=value, deleted=row.deleted)
        res.rows[row.id] = row
        if row.deleted:
            res.live.pop(row.id, None)
        else:
            res.live[row.id] = value
        self._seq += 1
        pos = (name, row.id)
        old = self._log_pos.get(pos)
        if old is not None:
            del self._log[old]
        self._log_pos[pos] = self._seq
        self._log[self._seq] = (
            name,
            row.id,
            "delete" if row.deleted else "upsert",
            row.version,
            int(now * 1000),
        )
        if self._log_limit is not None and len(self._log) > self._log_limit:
            seq, oldest = self._log.popitem(0)
            del self._log_pos[(oldest[0], oldest[1])]
            self._log_floor = seq

    def _remember(self, key: tuple[str, str], result: WriteItemOk, now: float) -> None:
        if self._idem_limit == 0:
            return
        self._idem[key] = (result.id, result.version, result.data, now)
        while len(self._idem) > self._idem_limit:
            self._idem.popitem(last=False)

    def _expire_keys(self, now: float) -> None:
        if self._idem_ttl is None:
            return
        horizon = now - self._idem_ttl
        while self._idem:
            key, (_, _, _, stored_at) = next(iter(self._idem.items()))
            if stored_at > horizon:
                break
            del self._idem[key]

    # -- queries ----------------------------------------------------------------------

    def _query(self, op: QueryOp) -> QueryResultData:
        res = self._resources.get(op.query.resource)
        entities: Mapping[str, dict[str, Any]] = res.live if res is not None else {}
        q = normalize_query(op.query.query)
        found = evaluate(entities, q)
        data = [copy_json(e) for e in found.data]
        return QueryResultData(data=data, page_info=found.page_info)

    # -- changes ----------------------------------------------------------------------

    def _pull(self, op: ChangesPullOp) -> ChangeBatch:
        spec = op.pull
        after = self._parse_cursor(spec.cursor)
        limit = min(spec.limit or DEFAULT_PULL_LIMIT, MAX_PULL_LIMIT)
        wanted = set(spec.resources) if spec.resources is not None else None
        changes: list[Change] = []
        last = after
        for seq in self._log.irange(minimum=after, inclusive=(False, True)):
            resource, id_, kind, version, changed_at_ms = self._log[seq]
            last = seq
            if wanted is not None and resource not in wanted:
                continue
            changes.append(
                Change(
                    resource=resource,
                    id=id_,
                    kind=kind,  # type: ignore[arg-type]
                    version=version,
                    changed_at_ms=changed_at_ms,
                )
            )
            if len(changes) >= limit:
                break
        else:
            # Nothing more to read: skip ahead to the head, past superseded sequence numbers.
            last = self._seq
        return ChangeBatch(next_cursor=str(last), changes=changes)

    def _parse_cursor(self, cursor: str | None) -> int:
        if cursor is None or cursor == "":
            seq = 0
        elif not (cursor.isascii() and cursor.isdigit()):
            raise ValidationError(f"invalid changes cursor: {cursor!r}", code="INVALID_CURSOR")
        else:
            seq = int(cursor)
        if seq < self._log_floor:
            raise ValidationError(
                f"changes cursor {cursor!r} is too old: the change log was trimmed up to "
                f"{self._log_floor}; read everything again, then pull from the head (resync)",
                code="INVALID_CURSOR",
                details={"hint": "resync", "oldestCursor": str(self._log_floor)},
            )
        if seq > self._seq:
            # A cursor from the future belongs to another (or an earlier) server's log.
            raise ValidationError(
                f"changes cursor {cursor!r} is ahead of this log", code="INVALID_CURSOR"
            )
        return seq

    # -- notify -----------------------------------------------------------------------

    def subscribe(self, callback: Callable[[NotifyMessage], None]) -> Callable[[], None]:
        """Call `callback(NotifyMessage(resources=[...]))` after each call that wrote.

        Callbacks run on the writer's thread, after the lock is released. Returns an
        unsubscribe callable (calling it twice is harmless)."""
        return self._listeners.subscribe(callback)

    def _notify(self, message: NotifyMessage) -> None:
        self._listeners.emit(message)

    # -- inspection -------------------------------------------------------------------

    def snapshot(self, resource: str) -> dict[str, dict[str, Any]]:
        """A copy of the live entities of `resource`, by id."""
        with self._lock:
            res = self._resources.get(resource)
            if res is None:
                return {}
            return {id_: copy_json(v) for id_, v in res.live.items()}

    def get(self, resource: str, id: str) -> dict[str, Any] | None:
        """A copy of one live entity, or None."""
        with self._lock:
            res = self._resources.get(resource)
            value = res.live.get(id) if res is not None else None
            return copy_json(value) if value is not None else None

    def version(self, resource: str, id: str) -> int | None:
        """The version of `id`, tombstones included (None if it was never written)."""
        with self._lock:
            res = self._resources.get(resource)
            row = res.rows.get(id) if res is not None else None
            return row.version if row is not None else None

    def resources(self) -> list[str]:
        """Names of the resources written so far, sorted."""
        with self._lock:
            return sorted(self._resources)

    @property
    def cursor(self) -> str:
        """The head of the change log (a cursor that sees only later changes)."""
        with self._lock:
            return str(self._seq)

    @property
    def change_log_size(self) -> int:
        """How many changes the log holds now (at most one per entity)."""
        with self._lock:
            return len(self._log)

    @property
    def idempotency_keys(self) -> int:
        """How many idempotency keys are remembered now."""
        with self._lock:
            return len(self._idem)


def _ok_copy(id_: str, version: int, data: dict[str, Any] | None) -> WriteItemOk:
    """An ok item result with its own copy of `data` (the caller may change it). A fresh
    model, not model_copy: copy.copy of a pydantic model costs more than the write."""
    return WriteItemOk(id=id_, version=version, data=copy_json(data) if data is not None else None)
