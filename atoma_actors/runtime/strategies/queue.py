"""The `queue` strategy actor: batches the writes of many callers and stores into few ops.

Lanes. Each store has its own lane, and each lane has at most one batch in flight: the batch's
answer (and its retries) comes back before the lane sends the next one, so writes to one entity
reach the backend in the order the StoreActor planned them, whatever the backend pool does.
A lane with a batch in flight keeps filling; lanes never wait for each other.

A lane sends when it is idle and holds `max_batch` entries, when its oldest entry has waited
`max_delay` seconds on the client's clock, or on demand (`FlushAll`, from `client.flush()`,
`store.flush()` and `close()`). A flush marks everything queued so far as due, so it drains
even when the clock does not move (freezegun): the delay timers are then never needed.

Within a batch, entries keep their order: an entry joins the op of its (action, options) only
if no later op touches the same entity, else it opens a new op (the backend runs ops in
order). Coalescing (see docs/queue.md) merges an update into the create or update before it
for the same entity only when both come from the same write request.

Retries: an entry whose outcome is retryable (`BackendUnavailable`, an op or item error with
`retryable=True`) is sent again after `retry_backoff * 2**n` seconds on the client's clock,
with the same entries (same idempotency keys), so a write whose reply was lost is applied once.
A failed later entry of the same entity is retried with it (it most likely failed because the
earlier one did not run). Retries stop after `retries` attempts or at the batch's deadline.

Backpressure is the `QueueGate`, asked by the facade on the caller's thread. Reads pass
straight through, as in `direct`. Must not import client or any backend.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Literal

import pykka

from atoma_actors.core.planning import wire_entries
from atoma_actors.protocol.errors import (
    AtomaError,
    ClientClosed,
    LimitsError,
    ValidationError,
)
from atoma_actors.protocol.ops import WriteEntry, WriteOp, WriteSpec
from atoma_actors.protocol.results import WriteItemError, WriteItemOk
from atoma_actors.runtime.actor import Actor
from atoma_actors.runtime.clock import Clock, Scheduler, TimerHandle
from atoma_actors.runtime.messages import PersistBatch, PersistRequest, ReadRequest
from atoma_actors.runtime.ops_chain import OpsCall, Submit
from atoma_actors.runtime.reply import Reply, deliver_all

from .base import meta_for, new_op_id, split_write_results
from .direct import send_read

__all__ = [
    "FlushAll",
    "QueueGate",
    "QueueOptions",
    "QueueStrategy",
    "coalesce_entries",
    "ordered_ops",
]

log = logging.getLogger("atoma_actors.runtime")

Item = WriteItemOk | WriteItemError | BaseException


@dataclass(frozen=True, slots=True)
class QueueOptions:
    """`create_client(queue={...})`: batch size and delay, the bound and its policy, retries.

    `max_delay` and `retry_backoff` are seconds on the client's clock; `max_queue` bounds the
    entries admitted and not yet answered; `coalesce` merges writes of one request to one
    entity (docs/queue.md)."""

    max_batch: int = 100
    max_delay: float = 0.005
    max_queue: int = 10_000
    backpressure: Literal["block", "reject"] = "block"
    retries: int = 3
    retry_backoff: float = 0.02
    retry_backoff_max: float = 1.0
    coalesce: bool = False

    @classmethod
    def from_mapping(cls, options: Mapping[str, Any]) -> QueueOptions:
        known = {f.name for f in fields(cls)}
        unknown = set(options) - known
        if unknown:
            raise ValidationError(
                f"unknown queue options {sorted(unknown)}; known: {sorted(known)}"
            )
        try:
            made = cls(**options)
            bad = (
                made.max_batch < 1
                or made.max_queue < 1
                or made.max_delay < 0
                or made.retries < 0
                or made.retry_backoff < 0
                or made.retry_backoff_max < 0
            )
        except TypeError as exc:
            raise ValidationError(f"queue options: {exc}") from None
        if bad:
            raise ValidationError(
                "queue: max_batch and max_queue must be >= 1; max_delay, retries and "
                "retry_backoff must be >= 0"
            )
        if made.backpressure not in ("block", "reject"):
            raise ValidationError("queue: backpressure is 'block' or 'reject'")
        return made


class QueueGate:
    """Bounds the entries admitted to the queue strategy and not yet answered.

    The facade asks the gate on the caller's thread (never on an actor's): with `block` the
    caller waits up to its timeout, with `reject` a full queue raises `LimitsError` at once.

    Releases come from the threads that answer writes, many times per batch: they append to
    a deque (atomic, no lock to contend for) and the next acquirer counts them in; only a
    caller actually waiting for room is woken, under the condition's lock.
    """

    def __init__(self, options: QueueOptions) -> None:
        self._options = options
        self._used = 0  # changed under `_cond` only
        self._released: deque[int] = deque()
        self._waiting = 0
        self._cond = threading.Condition(threading.Lock())

    def _count_releases(self) -> None:
        released = self._released
        while released:
            self._used -= released.popleft()

    @property
    def used(self) -> int:
        with self._cond:
            self._count_releases()
            return self._used

    def acquire(self, count: int, timeout: float | None) -> None:
        limit = self._options.max_queue
        if count > limit:
            raise LimitsError(f"a write of {count} entries exceeds the queue bound of {limit}")
        with self._cond:
            self._count_releases()
            if self._used + count > limit:
                if self._options.backpressure == "reject":
                    raise LimitsError(f"write queue full ({self._used}/{limit} entries)")
                self._waiting += 1
                try:
                    if not self._cond.wait_for(lambda: self._fits(count), timeout):
                        raise LimitsError(f"write queue still full after {timeout}s")
                finally:
                    self._waiting -= 1
            self._used += count

    def _fits(self, count: int) -> bool:
        self._count_releases()
        return self._used + count <= self._options.max_queue

    def release(self, count: int) -> None:
        # Append before looking for waiters: a caller that starts waiting after this
        # look counts this release in before it waits.
        self._released.append(count)
        if self._waiting:
            with self._cond:
                self._cond.notify_all()


@dataclass(frozen=True, slots=True)
class FlushAll:
    """Send everything queued so far (all lanes, or only `store`'s); replies once marked."""

    reply: Reply[Any]
    store: str | None = None


# -- pure helpers (unit-tested on their own) -----------------------------------------------


def ordered_ops(resource: str, entries: Sequence[WriteEntry]) -> list[tuple[WriteOp, list[int]]]:
    """Write ops for `entries` that keep each entity's order, with the entry indexes of each.

    An entry joins the latest op of its (action, options) unless a later op already touches
    its entity; then it opens a new op. So `create x, delete x, create x` is three ops, while
    the creates and updates of many different entities still share two."""
    buckets: list[list[int]] = []
    last_of_kind: dict[tuple[str, Any], int] = {}
    last_of_id: dict[str, int] = {}
    for index, entry in enumerate(entries):
        kind = (entry.action, entry.options)
        id_ = entry.item.id
        bucket = last_of_kind.get(kind)
        if bucket is None or (id_ is not None and last_of_id.get(id_, -1) > bucket):
            bucket = len(buckets)
            buckets.append([])
            last_of_kind[kind] = bucket
        buckets[bucket].append(index)
        if id_ is not None:
            last_of_id[id_] = max(last_of_id.get(id_, -1), bucket)
    return [
        (
            WriteOp(
                op_id=new_op_id(),
                write=WriteSpec(resource=resource, entries=[entries[i] for i in idx]),
            ),
            idx,
        )
        for idx in buckets
    ]


def coalesce_entries(
    entries: Sequence[WriteEntry], groups: Sequence[int] | None = None
) -> tuple[list[WriteEntry], list[list[int]]]:
    """Merge each update into the create or update just before it for the same entity.

    Returns the entries to send and, for each, the indexes of the entries it stands for (in
    order; the first one's idempotency key and base version are kept, the last one's value is
    sent). `groups[i]` names the write request of entry `i`: only entries of one request merge
    (docs/queue.md says why). An update merges only when it was planned on top of the entry
    before it (its base version is the one that entry leads to)."""
    wire: list[WriteEntry] = []
    members: list[list[int]] = []
    after: list[int | None] = []  # the version each wire entry leads to (None: unknown)
    last_of_id: dict[str, int] = {}
    for index, entry in enumerate(entries):
        id_ = entry.item.id
        target = last_of_id.get(id_) if id_ is not None else None
        if target is not None and entry.action == "update" and entry.options is None:
            head = wire[target]
            same_request = groups is None or groups[members[target][0]] == groups[index]
            base = entry.item.base_version  # type: ignore[union-attr]
            follows = after[target] is None or after[target] == base
            if (
                same_request
                and follows
                and head.action in ("create", "update")
                and head.options is None
            ):
                wire[target] = head.model_copy(
                    update={"item": head.item.model_copy(update={"value": entry.item.value})}  # type: ignore[union-attr]
                )
                members[target].append(index)
                after[target] = base + 1
                continue
        wire.append(entry)
        members.append([index])
        after.append(entry.item.base_version + 1 if entry.action == "update" else None)  # type: ignore[union-attr]
        if id_ is not None:
            last_of_id[id_] = len(wire) - 1
    return wire, members


def _retryable(item: Item) -> bool:
    if isinstance(item, WriteItemOk):
        return False
    if isinstance(item, WriteItemError):
        return bool(item.error.retryable)
    return isinstance(item, AtomaError) and bool(item.retryable)


def _member_item(item: Item, entry: WriteEntry) -> Item:
    """What an entry merged into a coalesced one is answered: the shared outcome, with its
    own value in place of the final one (the value its caller wrote)."""
    if not isinstance(item, WriteItemOk) or item.data is None:
        return item
    value = dict(getattr(entry.item, "value", None) or {})
    value["id"] = item.id
    value["version"] = item.version
    return WriteItemOk(id=item.id, version=item.version, data=value)


# -- the actor --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _FlushDue:
    store: str
    token: int


@dataclass(frozen=True, slots=True)
class _RetryDue:
    store: str
    batch: int


@dataclass(frozen=True, slots=True)
class _Answered:
    store: str
    batch: int
    sent: tuple[int, ...]
    groups: list[tuple[WriteOp, list[int]]]
    outcome: Any


@dataclass(slots=True)
class _Batch:
    id: int
    requests: list[PersistRequest]
    entries: list[WriteEntry]  # every entry of every request, in order
    wire: list[WriteEntry]  # what is sent (after coalescing)
    members: list[list[int]]  # for each wire entry, the entries it stands for
    span_of: list[int]  # for each entry, its request's index
    starts: list[int]  # for each request, the index of its first entry
    left: list[int]  # for each request, how many of its entries have no outcome yet
    results: list[Item | None]
    todo: list[int]  # wire entries still to send
    deadline: float | None
    context: dict[str, Any]
    attempt: int = 1
    timer: TimerHandle | None = None
    last_outcome: dict[int, Item] = field(default_factory=dict)


@dataclass(slots=True)
class _Lane:
    pending: deque[tuple[float, PersistRequest]] = field(default_factory=deque)
    size: int = 0
    timer: TimerHandle | None = None
    token: int = 0
    due: bool = False
    inflight: _Batch | None = None
    enqueued: int = 0  # requests ever queued
    taken: int = 0  # requests ever put into a batch
    drain_to: int = 0  # a flush asked for every request up to this count to be sent


class QueueStrategy(Actor):
    def __init__(
        self,
        submit: Submit,
        clock: Clock,
        scheduler: Scheduler,
        options: QueueOptions,
        *,
        gate: QueueGate | None = None,
        source: str = "remote",
    ) -> None:
        super().__init__()
        self._submit = submit
        self._source = source
        self._gate = gate
        # After a flush the queue stays eager (a lane sends as soon as it is idle) until the
        # writes admitted at the gate have all arrived: a write still on its way from the
        # StoreActor when the flush came must not wait for a timer a frozen clock never fires.
        self._eager = False
        self._held = 0  # entries received and not yet answered
        self._clock = clock
        self._scheduler = scheduler
        self._options = options
        self._lanes: dict[str, _Lane] = {}
        self._batch_ids = itertools.count(1)
        self._stopping = False
        # Answers settled while handling one message, delivered together at its end: the
        # requests of one StoreActor get one message for the whole batch.
        self._answers: list[tuple[Reply[Any], Any]] = []
        # counters for benches and tests: calls sent, entries sent, retries, entries merged
        self.stats = {"calls": 0, "entries": 0, "retries": 0, "coalesced": 0}

    def held(self) -> int:
        """Entries received and not yet answered (through `proxy()`, for tests and probes)."""
        return self._held

    # -- messages ------------------------------------------------------------------------
    def on_receive(self, message: Any) -> None:
        try:
            self._receive(message)
        finally:
            self._deliver_answers()

    def _deliver_answers(self) -> None:
        answers, self._answers = self._answers, []
        deliver_all(answers)

    def _receive(self, message: Any) -> None:
        if isinstance(message, PersistRequest):
            self._enqueue(message)
        elif isinstance(message, PersistBatch):
            touched = {
                request.store: self._enqueue(request, pump=False) for request in message.requests
            }
            for store, touched_lane in touched.items():
                self._pump(store, touched_lane)
        elif isinstance(message, _Answered):
            self._answered(message)
        elif isinstance(message, ReadRequest):
            send_read(message, self._submit, self._clock.time_ms(), self._source)
        elif isinstance(message, _FlushDue):
            lane = self._lanes.get(message.store)
            if lane is not None and lane.token == message.token:
                lane.timer = None
                lane.due = True
                self._pump(message.store, lane)
        elif isinstance(message, _RetryDue):
            lane = self._lanes.get(message.store)
            batch = lane.inflight if lane is not None else None
            if batch is not None and batch.id == message.batch and batch.timer is not None:
                batch.timer = None
                self._send(message.store, batch)
        elif isinstance(message, FlushAll):
            self._flush_all(message)

    def on_stop(self) -> None:
        self._stopping = True
        closed = ClientClosed("client closed before the queued write was answered")
        for lane in self._lanes.values():
            if lane.timer is not None:
                lane.timer.cancel()
            batch = lane.inflight
            if batch is not None:
                if batch.timer is not None:
                    batch.timer.cancel()
                for wi in batch.todo:
                    self._settle(batch, wi, batch.last_outcome.get(wi, closed))
                lane.inflight = None
            while lane.pending:
                _, req = lane.pending.popleft()
                req.reply(closed)
        self._deliver_answers()

    # -- queueing ------------------------------------------------------------------------
    def _enqueue(self, req: PersistRequest, *, pump: bool = True) -> _Lane:
        lane = self._lanes.get(req.store)
        if lane is None:
            lane = self._lanes[req.store] = _Lane()
        lane.pending.append((self._clock.now(), req))
        lane.size += len(req.entries)
        self._held += len(req.entries)
        lane.enqueued += 1
        if pump:
            self._pump(req.store, lane)
        return lane

    def _flush_all(self, message: FlushAll) -> None:
        for store, lane in self._lanes.items():
            if message.store is not None and store != message.store:
                continue
            lane.drain_to = lane.enqueued
            batch = lane.inflight
            if batch is not None and batch.timer is not None:
                # A flush does not wait out a retry backoff (the clock may be frozen).
                batch.timer.cancel()
                batch.timer = None
                self._send(store, batch)
            self._pump(store, lane)
        if message.store is None:
            self._eager = True
            self._end_eager(0)
        message.reply(None)

    def _end_eager(self, just_answered: int) -> None:
        """Leave eager mode once every lane is idle and no admitted write is on its way here
        (the gate still counts the entries just answered: their futures settle later)."""
        if not self._eager:
            return
        if any(lane.pending or lane.inflight is not None for lane in self._lanes.values()):
            return
        if self._gate is None or self._gate.used <= just_answered:
            self._eager = False

    def _pump(self, store: str, lane: _Lane) -> None:
        """Send the next batch if the lane is idle and something is due; else keep a timer."""
        if not lane.pending:
            return
        if lane.inflight is None and (
            lane.due
            or self._eager
            or lane.size >= self._options.max_batch
            or lane.drain_to > lane.taken
            or self._options.max_delay <= 0
        ):
            self._take(store, lane)
            return
        if lane.timer is None and not lane.due:
            waited = self._clock.now() - lane.pending[0][0]
            lane.token += 1
            me, token = self.actor_ref, lane.token
            lane.timer = self._scheduler.call_later(
                self._options.max_delay - waited, lambda: _tell(me, _FlushDue(store, token))
            )

    def _take(self, store: str, lane: _Lane) -> None:
        requests: list[PersistRequest] = []
        count = 0
        limit = self._options.max_batch
        while lane.pending and (not requests or count + len(lane.pending[0][1].entries) <= limit):
            _, req = lane.pending.popleft()
            requests.append(req)
            count += len(req.entries)
        lane.size -= count
        lane.taken += len(requests)
        lane.due = False
        if lane.timer is not None:
            lane.timer.cancel()
            lane.timer = None
        lane.token += 1

        entries: list[WriteEntry] = []
        span_of: list[int] = []
        starts: list[int] = []
        accepted: list[PersistRequest] = []
        for req in requests:
            try:
                wire_form = wire_entries(req.entries)
            except AtomaError as exc:  # this request fails alone; the batch goes on
                self._held -= len(req.entries)
                self._answers.append((req.reply, exc))
                continue
            starts.append(len(entries))
            entries.extend(wire_form)
            span_of.extend([len(accepted)] * len(req.entries))
            accepted.append(req)
        requests = accepted
        if not requests:
            self._pump(store, lane)
            self._end_eager(0)
            return
        if self._options.coalesce:
            wire, members = coalesce_entries(entries, span_of)
        else:
            wire, members = list(entries), [[i] for i in range(len(entries))]
        self.stats["coalesced"] += len(entries) - len(wire)
        deadlines = [r.deadline for r in requests if r.deadline is not None]
        first = requests[0].context
        batch = _Batch(
            id=next(self._batch_ids),
            requests=requests,
            entries=entries,
            wire=wire,
            members=members,
            span_of=span_of,
            starts=starts,
            left=[len(r.entries) for r in requests],
            results=[None] * len(entries),
            todo=list(range(len(wire))),
            deadline=max(deadlines) if deadlines else None,
            context=first if all(r.context == first for r in requests) else {},
        )
        lane.inflight = batch
        self._send(store, batch)
        # Entries left behind (a full batch) keep their own delay.
        self._pump(store, lane)

    # -- sending and answers -------------------------------------------------------------
    def _send(self, store: str, batch: _Batch) -> None:
        sent = tuple(batch.todo)
        groups = ordered_ops(store, [batch.wire[i] for i in sent])
        call = OpsCall(
            ops=tuple(op for op, _ in groups),
            meta=meta_for(self._clock.time_ms()),
            store=store,
            route_key=store,
            keys=tuple(f"{store}/{batch.wire[i].item.id}" for i in sent),
            deadline=batch.deadline,
            context=batch.context,
            attempt=batch.attempt,
        )
        self.stats["calls"] += 1
        self.stats["entries"] += len(sent)
        me, batch_id = self.actor_ref, batch.id

        def answered(outcome: Any) -> None:
            if not _tell(me, _Answered(store, batch_id, sent, groups, outcome)):
                # The queue stopped meanwhile (close timed out): its on_stop already answered.
                log.debug("queue answer for %s arrived after stop", store)

        self._submit(call, Reply(answered))

    def _answered(self, msg: _Answered) -> None:
        lane = self._lanes.get(msg.store)
        batch = lane.inflight if lane is not None else None
        if lane is None or batch is None or batch.id != msg.batch:
            return
        items = split_write_results(len(msg.sent), msg.groups, msg.outcome)
        opts = self._options
        can_retry = (
            not self._stopping
            and batch.attempt <= opts.retries
            and (batch.deadline is None or self._clock.now() < batch.deadline)
        )
        again: list[int] = []
        retried_ids: set[str] = set()
        for wi, item in zip(msg.sent, items, strict=True):
            id_ = batch.wire[wi].item.id
            dependent = id_ in retried_ids and not isinstance(item, WriteItemOk)
            if can_retry and (_retryable(item) or dependent):
                again.append(wi)
                batch.last_outcome[wi] = item
                if id_ is not None:
                    retried_ids.add(id_)
                continue
            self._settle(batch, wi, item)
        if again:
            batch.todo = again
            batch.attempt += 1
            self.stats["retries"] += 1
            delay = min(opts.retry_backoff * 2 ** (batch.attempt - 2), opts.retry_backoff_max)
            flushing = lane.drain_to > lane.taken - len(batch.requests)
            if flushing and batch.attempt == 2:
                # A flush is waiting on this batch and the clock may be frozen: the first
                # retry goes at once, later ones back off on the clock.
                delay = 0.0
            if delay <= 0:
                self._send(msg.store, batch)
                return
            me, store, batch_id = self.actor_ref, msg.store, batch.id
            batch.timer = self._scheduler.call_later(
                delay, lambda: _tell(me, _RetryDue(store, batch_id))
            )
            return
        lane.inflight = None
        self._pump(msg.store, lane)
        self._end_eager(len(batch.entries))

    def _settle(self, batch: _Batch, wi: int, item: Item) -> None:
        members = batch.members[wi]
        last = members[-1]
        for m in members:
            batch.results[m] = item if m == last else _member_item(item, batch.entries[m])
            span = batch.span_of[m]
            batch.left[span] -= 1
            if batch.left[span] == 0:
                lo = batch.starts[span]
                hi = lo + len(batch.requests[span].entries)
                self._held -= hi - lo
                self._answers.append((batch.requests[span].reply, list(batch.results[lo:hi])))


def _tell(ref: pykka.ActorRef[Any], message: Any) -> bool:
    try:
        ref.tell(message)
    except pykka.ActorDeadError:
        return False
    return True
