"""The `queue` strategy actor: batches the writes of many callers and stores into few ops.

Each store has its own lane. A lane flushes when it holds `max_batch` entries, when its oldest
entry has waited `max_delay` seconds on the client's clock, or on demand (`FlushAll`, sent by
`client.flush()` and `close()`). Reads pass straight through, as in `direct`.
Must not import client or any backend.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal

import pykka

from atoma_actors.protocol.errors import LimitsError, ValidationError
from atoma_actors.runtime.clock import Clock, Scheduler, TimerHandle
from atoma_actors.runtime.ops_chain import OpsCall, Submit
from atoma_actors.runtime.reply import Reply
from atoma_actors.runtime.store_actor import PersistRequest

from .base import ReadRequest, group_entries, meta_for, split_write_results
from .direct import DirectStrategy

__all__ = ["FlushAll", "QueueGate", "QueueOptions", "QueueStrategy"]


@dataclass(frozen=True, slots=True)
class QueueOptions:
    max_batch: int = 100
    max_delay: float = 0.005
    max_queue: int = 10_000
    backpressure: Literal["block", "reject"] = "block"
    retries: int = 3
    retry_backoff: float = 0.02

    @classmethod
    def from_mapping(cls, options: Mapping[str, Any]) -> QueueOptions:
        known = {f.name for f in fields(cls)}
        unknown = set(options) - known
        if unknown:
            raise ValidationError(
                f"unknown queue options {sorted(unknown)}; known: {sorted(known)}"
            )
        made = cls(**options)
        if made.max_batch < 1 or made.max_queue < 1 or made.max_delay < 0:
            raise ValidationError("queue: max_batch and max_queue must be >= 1, max_delay >= 0")
        if made.backpressure not in ("block", "reject"):
            raise ValidationError("queue: backpressure is 'block' or 'reject'")
        return made


class QueueGate:
    """Bounds the entries admitted to the queue strategy and not yet answered.

    The facade asks the gate on the caller's thread (never on an actor's): with `block` the
    caller waits up to its timeout, with `reject` a full queue raises `LimitsError` at once.
    """

    def __init__(self, options: QueueOptions) -> None:
        self._options = options
        self._used = 0
        self._cond = threading.Condition()

    @property
    def used(self) -> int:
        return self._used

    def acquire(self, count: int, timeout: float | None) -> None:
        limit = self._options.max_queue
        if count > limit:
            raise LimitsError(f"a write of {count} entries exceeds the queue bound of {limit}")
        with self._cond:
            if self._used + count > limit:
                if self._options.backpressure == "reject":
                    raise LimitsError(f"write queue full ({self._used}/{limit} entries)")
                if not self._cond.wait_for(lambda: self._used + count <= limit, timeout):
                    raise LimitsError(f"write queue still full after {timeout}s")
            self._used += count

    def release(self, count: int) -> None:
        with self._cond:
            self._used -= count
            self._cond.notify_all()


@dataclass(frozen=True, slots=True)
class FlushAll:
    reply: Reply[Any]


@dataclass(frozen=True, slots=True)
class _FlushDue:
    store: str


@dataclass(slots=True)
class _Lane:
    requests: list[PersistRequest] = field(default_factory=list)
    size: int = 0
    timer: TimerHandle | None = None


class QueueStrategy(pykka.ThreadingActor):
    def __init__(
        self, submit: Submit, clock: Clock, scheduler: Scheduler, options: QueueOptions
    ) -> None:
        super().__init__()
        self._submit = submit
        self._clock = clock
        self._scheduler = scheduler
        self._options = options
        self._lanes: dict[str, _Lane] = {}
        self._reads = DirectStrategy(submit, clock.time_ms)

    def on_receive(self, message: Any) -> None:
        if isinstance(message, PersistRequest):
            self._enqueue(message)
        elif isinstance(message, ReadRequest):
            self._reads._read(message)
        elif isinstance(message, _FlushDue):
            self._flush(message.store)
        elif isinstance(message, FlushAll):
            for store in list(self._lanes):
                self._flush(store)
            message.reply(None)

    def _enqueue(self, req: PersistRequest) -> None:
        lane = self._lanes.setdefault(req.store, _Lane())
        lane.requests.append(req)
        lane.size += len(req.entries)
        if lane.size >= self._options.max_batch:
            self._flush(req.store)
        elif lane.timer is None:
            me = self.actor_ref
            lane.timer = self._scheduler.call_later(
                self._options.max_delay, lambda: me.tell(_FlushDue(req.store))
            )

    def _flush(self, store: str) -> None:
        lane = self._lanes.get(store)
        if lane is None or not lane.requests:
            return
        if lane.timer is not None:
            lane.timer.cancel()
            lane.timer = None
        requests, lane.requests, lane.size = lane.requests, [], 0
        entries = tuple(e for r in requests for e in r.entries)
        spans = []
        start = 0
        for r in requests:
            spans.append((r.reply, start, start + len(r.entries)))
            start += len(r.entries)
        groups = group_entries(store, entries)
        deadline = max((r.deadline for r in requests if r.deadline is not None), default=None)

        def answered(outcome: Any) -> None:
            items = split_write_results(len(entries), groups, outcome)
            for reply, lo, hi in spans:
                reply(items[lo:hi])

        call = OpsCall(
            ops=tuple(op for op, _ in groups),
            meta=meta_for(self._clock.time_ms()),
            store=store,
            route_key=store,
            deadline=deadline,
        )
        self._submit(call, Reply(answered))
