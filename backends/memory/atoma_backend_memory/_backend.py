"""`MemoryBackend`: a simulated Atoma server in memory, shared by any number of clients.

It wraps a `MemoryStorage` (the data) and a `FaultInjector` (what goes wrong), counts calls,
ops and entries, and hands the runtime a `Backend(key, store=Endpoint(...), ...)`. Disposing a
client's backend never touches the data: like a real server, it outlives its clients.
Imports only `atoma_actors.protocol` and `atoma_actors.core`, never runtime or client.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from atoma_actors.core.storage import MemoryStorage
from atoma_actors.protocol.backend import Backend, Capabilities, Endpoint, OpsOutcome
from atoma_actors.protocol.errors import ValidationError
from atoma_actors.protocol.ops import Meta, Operation, WriteOp
from atoma_actors.protocol.results import OperationResult, OperationResultError

from ._faults import (
    FaultInjector,
    FaultPlan,
    InjectedCrash,
    InjectedHangReleased,
    InjectedLostReply,
    injected_error,
)

__all__ = ["BackendStats", "MemoryBackend", "memory_backend"]


@dataclass(frozen=True, slots=True)
class BackendStats:
    """Counters since creation (or the last `reset_stats`).

    `calls` counts every `execute_ops` call received; `ops` and `entries` count only what
    reached the storage (ops failed by an injected error, or calls that crashed, are not)."""

    calls: int = 0
    ops: int = 0
    entries: int = 0
    disposals: int = 0


class MemoryBackend:
    """A simulated remote: `MemoryStorage` behind seeded, switchable faults.

    `seed` makes faults (and the ids of id-less creates, when this backend makes its own
    storage) replay identically. `clock` (seconds since the epoch) stamps changes; `sleep`
    serves latency and `cost_per_call` (seconds of work per call), so a simulation can pass a
    virtual-time sleep.
    """

    def __init__(
        self,
        key: str = "memory",
        *,
        storage: MemoryStorage | None = None,
        faults: FaultPlan | None = None,
        seed: int | None = None,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], Any] | None = None,
        cost_per_call: float = 0.0,
    ) -> None:
        if cost_per_call < 0:
            raise ValidationError("cost_per_call must be >= 0 seconds")
        if storage is None:
            id_factory = None
            if seed is not None:
                ids = random.Random(seed)
                id_factory = lambda: f"{ids.getrandbits(128):032x}"  # noqa: E731
            storage = MemoryStorage(id_factory=id_factory, clock=clock)
        self.key = key
        self.storage = storage
        self.faults = FaultInjector(faults, seed=seed)
        self.cost_per_call = cost_per_call
        self._sleep = sleep or time.sleep
        self._lock = threading.Lock()
        self._counts = [0, 0, 0, 0]  # calls, ops, entries, disposals
        self._backend = Backend(
            key=key,
            store=Endpoint(self),
            capabilities=Capabilities("remote"),
            notify=storage,
            dispose=self._disposed,
        )

    @property
    def backend(self) -> Backend:
        """The `Backend` to hand to `create_client`; the same object every time, and fine
        to share between clients."""
        return self._backend

    # -- the ops client ---------------------------------------------------------------

    def execute_ops(
        self,
        ops: Sequence[Operation],
        meta: Meta,
        *,
        deadline: float | None = None,
        context: dict[str, Any] | None = None,
    ) -> OpsOutcome:
        """Run `ops` against the storage, through the faults in force."""
        self._count(calls=1)
        fate = self.faults.draw(len(ops))
        pause = self.cost_per_call + fate.latency
        if pause > 0:
            self._sleep(pause)
        if fate.hang is not None:
            self.faults.block(fate.hang)
            if fate.hang_outcome == "crash":
                raise InjectedHangReleased("injected hang released; the call did nothing")
        if fate.crash:
            raise InjectedCrash("injected backend crash")

        runnable = [op for op, failed in zip(ops, fate.failed_ops, strict=True) if not failed]
        ran: list[OperationResult] = []
        status = 200
        if runnable:
            ran, status = self.storage.execute_ops(
                runnable, meta, deadline=deadline, context=context
            )
            entries = sum(len(op.write.entries) for op in runnable if isinstance(op, WriteOp))
            self._count(ops=len(runnable), entries=entries)
        if fate.lost_reply:
            raise InjectedLostReply("injected lost reply: the ops ran, the answer is gone")

        done = iter(ran)
        results: list[OperationResult] = [
            OperationResultError(op_id=op.op_id, error=injected_error()) if failed else next(done)
            for op, failed in zip(ops, fate.failed_ops, strict=True)
        ]
        return results, status

    # -- counters and helpers -----------------------------------------------------------

    @property
    def stats(self) -> BackendStats:
        with self._lock:
            return BackendStats(*self._counts)

    def reset_stats(self) -> None:
        """Zero the call counters and the fault counters."""
        with self._lock:
            self._counts = [0, 0, 0, 0]
        self.faults.reset_stats()

    def snapshot(self, resource: str) -> dict[str, dict[str, Any]]:
        """A copy of the live entities of `resource`, by id (what the server holds)."""
        return self.storage.snapshot(resource)

    def heal(self) -> None:
        """Turn every fault off and release hung calls (same as `faults.heal()`)."""
        self.faults.heal()

    def release(self) -> None:
        """Release hung calls (same as `faults.release()`)."""
        self.faults.release()

    def _count(self, *, calls: int = 0, ops: int = 0, entries: int = 0) -> None:
        with self._lock:
            counts = self._counts
            counts[0] += calls
            counts[1] += ops
            counts[2] += entries

    def _disposed(self) -> None:
        # A client let go of the backend; the data stays for the other clients (and later
        # ones), as a server's would.
        with self._lock:
            self._counts[3] += 1


def memory_backend(key: str = "memory", **options: Any) -> Backend:
    """A `Backend` over a fresh `MemoryBackend(key, **options)`, when no handle is needed."""
    return MemoryBackend(key, **options).backend
