"""Backend actors and the group that routes calls to them.

A `BackendActor` owns nothing but its ops client: it takes one `OpsCall` at a time and calls
`ops_client.execute_ops` on its own thread (slow I/O stays off every other actor). A
`BackendGroup` is the terminal of the ops chain for one endpoint (`store` or `remote`): it keeps
a small pool of actors (one per slot; a call goes to the slot of its route key, so calls for
one entity keep their order), the calls in flight on each slot, and a deadline timer per call.
What to do when a slot fails is the Supervisor's decision; the group reports and obeys.
Must not import client or any backend.
"""

from __future__ import annotations

import logging
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import pykka

from atoma_actors.protocol.backend import OpsClient
from atoma_actors.protocol.codecs import validate_as
from atoma_actors.protocol.errors import AdapterError, AtomaError, BackendUnavailable
from atoma_actors.protocol.results import OperationResult

from .actor import Actor
from .clock import Clock, Scheduler, TimerHandle
from .ops_chain import OpsCall
from .reply import Reply

__all__ = ["BackendActor", "BackendGroup", "Failure", "GroupState"]

log = logging.getLogger("atoma_actors.runtime")

GroupState = Literal["closed", "open", "half_open"]
_RESULT_LIST = list[OperationResult]


@dataclass(slots=True)
class _Generation:
    """Shared between a slot and the actor serving it: set `retired` to disown the actor."""

    number: int
    retired: bool = False


@dataclass(frozen=True, slots=True)
class _Execute:
    call: OpsCall
    reply: Reply[Any]
    phase: _Phase


class _Phase:
    """Where a call is: `queued` in an actor's mailbox, `running` in the ops client, or
    `expired` (its deadline passed while queued: answered, never to be sent). Moves under
    the group's lock, so a call is either sent or expired, never both."""

    __slots__ = ("lock", "value")

    def __init__(self, lock: threading.Lock) -> None:
        self.lock = lock
        self.value = "queued"

    def begin(self) -> bool:
        with self.lock:
            if self.value != "queued":
                return False
            self.value = "running"
            return True


@dataclass(frozen=True, slots=True)
class Failure:
    """Reported to the Supervisor: a slot's actor crashed, hung, or its client said unavailable."""

    group: str
    slot: int
    generation: int
    reason: Literal["crash", "hang", "unavailable"]
    error: str


class BackendActor(Actor):
    def __init__(
        self,
        ops_client: OpsClient,
        generation: _Generation,
        on_failure: Callable[[str, BaseException], None],
        clock: Clock,
    ) -> None:
        super().__init__()
        self._client = ops_client
        self._generation = generation
        self._on_failure = on_failure
        self._clock = clock

    def _io_deadline(self, deadline: float | None) -> float | None:
        """The call's deadline (on the client's clock) as the `time.monotonic()` value the
        ops client expects, so real I/O gets the time left even under a simulated clock."""
        if deadline is None:
            return None
        return time.monotonic() + max(0.0, deadline - self._clock.now())

    def on_receive(self, message: Any) -> None:
        if not isinstance(message, _Execute):
            return
        call, reply = message.call, message.reply
        if reply.done or not message.phase.begin():
            return  # abandoned (deadline passed or slot failed) before we got to it
        if self._generation.retired:
            reply(BackendUnavailable("backend actor was replaced"))
            return
        try:
            results, status = self._client.execute_ops(
                list(call.ops),
                call.meta,
                deadline=self._io_deadline(call.deadline),
                context=call.context,
            )
            outcome: Any = (_checked(results, call), status)
        except BackendUnavailable as exc:
            reply(exc)
            self._on_failure("unavailable", exc)
            return
        except AtomaError as exc:
            reply(exc)
            return
        except Exception as exc:
            log.warning("backend actor crashed: %r", exc)
            reply(BackendUnavailable(f"backend crashed: {exc!r}"))
            self._on_failure("crash", exc)
            return
        reply(outcome)


def _checked(results: Any, call: OpsCall) -> list[OperationResult]:
    """Backend results validated at the boundary: one result per op, ids in op order."""
    if not isinstance(results, list) or not all(
        type(r).__name__.startswith("OperationResult") for r in results
    ):
        results = validate_as(_RESULT_LIST, results)
    if len(results) != len(call.ops):
        raise AdapterError(f"backend returned {len(results)} results for {len(call.ops)} ops")
    for op, result in zip(call.ops, results, strict=True):
        if result.op_id != op.op_id:
            raise AdapterError(f"backend answered op {result.op_id!r} in place of {op.op_id!r}")
    return results


@dataclass(slots=True)
class _Slot:
    index: int
    generation: _Generation
    actor: pykka.ActorRef[Any] | None = None
    inflight: dict[int, Reply[Any]] = field(default_factory=dict)


class BackendGroup:
    """Terminal of the ops chain for one endpoint; thread-safe (one lock)."""

    def __init__(
        self,
        name: str,
        ops_client: OpsClient,
        *,
        size: int,
        clock: Clock,
        scheduler: Scheduler,
        report: Callable[[Failure], None],
        report_recovered: Callable[[str], None],
    ) -> None:
        self.name = name
        self._client = ops_client
        self._clock = clock
        self._scheduler = scheduler
        self._report = report
        self._report_recovered = report_recovered
        self._lock = threading.Lock()
        self._slots = [_Slot(i, _Generation(0)) for i in range(max(1, size))]
        self.state: GroupState = "closed"
        self.degraded = False
        self._probe_in_flight = False
        self._stopped = False
        self._pins: dict[str, tuple[int, int]] = {}  # key in flight -> (slot, calls)
        for slot in self._slots:
            self._start_actor(slot)

    # -- the terminal Submit -------------------------------------------------------------
    def submit(self, call: OpsCall, reply: Reply[Any]) -> None:
        probing = False
        timers: list[TimerHandle] = []
        phase = _Phase(self._lock)

        def done(outcome: Any) -> None:
            for timer in timers:
                timer.cancel()
            with self._lock:
                slot.inflight.pop(call.call_id, None)
                self._unpin(call.keys)
                if probing:
                    self._probe_in_flight = False
                recovered = self.degraded and not isinstance(outcome, BackendUnavailable)
            if recovered:
                self._report_recovered(self.name)
            reply(outcome)

        tracked: Reply[Any] = Reply(done)
        with self._lock:
            slot = self._slot_for(call)
            if self.state == "open":
                refused = "circuit open"
            elif self.state == "half_open" and self._probe_in_flight:
                refused = "circuit half-open, probe in flight"
            elif slot.actor is None:
                refused = "backend restarting"
            else:
                refused = ""
                actor = slot.actor
                generation = slot.generation.number
                probing = self.state == "half_open"
                self._probe_in_flight = self._probe_in_flight or probing
                slot.inflight[call.call_id] = tracked
                self._pin(call.keys, slot.index)
        if refused:
            reply(BackendUnavailable(f"{self.name}: {refused}"))
            return
        if call.deadline is not None:
            timer = self._scheduler.call_later(
                call.deadline - self._clock.now(),
                lambda: self._expire(slot, generation, call.call_id, phase, tracked),
            )
            timers.append(timer)
        actor.tell(_Execute(call, tracked, phase))

    # -- called by the Supervisor --------------------------------------------------------
    def fail_slot(self, index: int, generation: int, error: BaseException) -> bool:
        """Disown the slot's actor and fail every call in flight on it. False if stale."""
        with self._lock:
            slot = self._slots[index]
            if slot.generation.number != generation or slot.actor is None:
                return False
            slot.generation.retired = True
            actor, slot.actor = slot.actor, None
            inflight, slot.inflight = slot.inflight, {}
            self.degraded = True
        for reply in inflight.values():
            reply(error)
        actor.stop(block=False)
        return True

    def is_current(self, index: int, generation: int) -> bool:
        with self._lock:
            return self._slots[index].generation.number == generation

    def restart_slot(self, index: int) -> None:
        with self._lock:
            slot = self._slots[index]
            if slot.actor is None and not self._stopped:
                self._start_actor(slot)

    def restart_all(self) -> None:
        for slot in self._slots:
            self.restart_slot(slot.index)

    def set_state(self, state: GroupState, *, degraded: bool | None = None) -> None:
        with self._lock:
            self.state = state
            if state != "half_open":
                self._probe_in_flight = False
            if degraded is not None:
                self.degraded = degraded

    def inflight_count(self) -> int:
        with self._lock:
            return sum(len(s.inflight) for s in self._slots)

    def stop(self, timeout: float = 5.0) -> None:
        with self._lock:
            self._stopped = True  # a restart timer firing after this must start nothing
            actors = [s.actor for s in self._slots if s.actor is not None]
            inflight = [r for s in self._slots for r in s.inflight.values()]
            for s in self._slots:
                s.generation.retired = True
                s.actor = None
                s.inflight = {}
        for reply in inflight:
            reply(BackendUnavailable(f"{self.name}: client closed"))
        stopping = [actor.stop(block=False) for actor in actors]
        for future in stopping:
            try:
                future.get(timeout=timeout)
            except pykka.Timeout:
                # a call hung in the ops client; the actor stops once that call returns
                log.warning("%s: a backend actor is still blocked in a call", self.name)

    # -- internals -----------------------------------------------------------------------
    def _start_actor(self, slot: _Slot) -> None:
        generation = _Generation(slot.generation.number + 1)
        slot.generation = generation

        def on_failure(reason: str, exc: BaseException, _g: _Generation = generation) -> None:
            self._report(Failure(self.name, slot.index, _g.number, reason, repr(exc)))  # type: ignore[arg-type]

        slot.actor = BackendActor.start(self._client, generation, on_failure, self._clock)

    def _expire(
        self, slot: _Slot, generation: int, call_id: int, phase: _Phase, reply: Reply[Any]
    ) -> None:
        with self._lock:
            if phase.value == "queued":
                # still waiting behind other calls: it fails alone, the actor is not to blame
                phase.value = "expired"
                hung = False
            else:
                hung = slot.generation.number == generation and call_id in slot.inflight
        if phase.value == "expired":
            reply(BackendUnavailable(f"{self.name}: deadline passed before the call was sent"))
        elif hung:
            self._report(Failure(self.name, slot.index, generation, "hang", "deadline passed"))

    # -- routing: one entity's calls never overtake each other ---------------------------
    def _slot_for(self, call: OpsCall) -> _Slot:
        """The slot of the first key already in flight (so calls touching one entity queue
        on one actor, in order), else the slot the route key hashes to."""
        for key in call.keys:
            pinned = self._pins.get(key)
            if pinned is not None:
                return self._slots[pinned[0]]
        return self._slots[zlib.crc32(call.route_key.encode()) % len(self._slots)]

    def _pin(self, keys: tuple[str, ...], index: int) -> None:
        for key in keys:
            slot_index, count = self._pins.get(key, (index, 0))
            self._pins[key] = (slot_index, count + 1)

    def _unpin(self, keys: tuple[str, ...]) -> None:
        for key in keys:
            slot_index, count = self._pins.get(key, (0, 1))
            if count <= 1:
                self._pins.pop(key, None)
            else:
                self._pins[key] = (slot_index, count - 1)
