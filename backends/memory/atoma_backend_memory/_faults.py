"""Seeded fault injection for the memory backend: errors, latency, crashes, lost replies, hangs.

`FaultPlan` is the immutable description of the rates; `FaultInjector` is the live object a
test or simulation holds and changes at run time (`configure`, `crash_next`, `hang`,
`release`, `heal`). Every call draws the same number of random numbers whatever the plan, so
for a given seed and call order the outcome of each call is the same, even when the plan
changes between calls. Imports only `atoma_actors.protocol`.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, replace
from typing import Literal

from atoma_actors.protocol.errors import StandardError, ValidationError

__all__ = [
    "CallFaults",
    "FaultInjector",
    "FaultPlan",
    "FaultStats",
    "InjectedCrash",
    "InjectedFault",
    "InjectedHangReleased",
    "InjectedLostReply",
    "injected_error",
]


class InjectedFault(RuntimeError):
    """Base of the non-protocol exceptions the memory backend raises on purpose."""


class InjectedCrash(InjectedFault):
    """The simulated server crashed before it did anything."""


class InjectedLostReply(InjectedFault):
    """The simulated server did the work, then the reply was lost."""


class InjectedHangReleased(InjectedFault):
    """A hung call was released with `hang_outcome="crash"`; it did nothing."""


def injected_error() -> StandardError:
    """The op-level error an injected failure returns: a retryable adapter error."""
    return StandardError(
        code="INJECTED_FAULT",
        message="injected backend fault",
        kind="adapter",
        retryable=True,
    )


def _rate(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValidationError(f"{name} must be between 0 and 1, not {value!r}")


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """What to inject. Rates are probabilities in [0, 1].

    - `error_rate`, per op: the op is not run and returns a retryable adapter error.
    - `crash_rate`, per call: `execute_ops` raises `InjectedCrash` before running anything.
    - `lost_reply_rate`, per call: the ops run, then `InjectedLostReply` is raised (the classic
      case idempotency keys exist for).
    - `latency`, per call, in seconds: a constant, or `(low, high)` drawn uniformly.
    - `hang_outcome`: what a hung call does once released: `"crash"` (raise, having done
      nothing, so the abandoned write never lands) or `"run"` (run late; the answer is ignored
      by whoever abandoned it, but the write lands).
    """

    error_rate: float = 0.0
    crash_rate: float = 0.0
    lost_reply_rate: float = 0.0
    latency: float | tuple[float, float] = 0.0
    hang_outcome: Literal["crash", "run"] = "crash"

    def __post_init__(self) -> None:
        _rate("error_rate", self.error_rate)
        _rate("crash_rate", self.crash_rate)
        _rate("lost_reply_rate", self.lost_reply_rate)
        low, high = self.latency if isinstance(self.latency, tuple) else (self.latency,) * 2
        if not 0.0 <= low <= high:
            raise ValidationError(f"latency must be >= 0 (low <= high), not {self.latency!r}")
        if self.hang_outcome not in ("crash", "run"):
            raise ValidationError(
                f"hang_outcome must be 'crash' or 'run', not {self.hang_outcome!r}"
            )

    @property
    def quiet(self) -> bool:
        """True when this plan injects nothing."""
        return self == FaultPlan(hang_outcome=self.hang_outcome)


@dataclass(frozen=True, slots=True)
class FaultStats:
    """How many faults were injected so far."""

    errors: int = 0
    crashes: int = 0
    lost_replies: int = 0
    hangs: int = 0
    latency_s: float = 0.0


@dataclass(frozen=True, slots=True)
class CallFaults:
    """What happens to one call, decided before it runs."""

    failed_ops: tuple[bool, ...]
    latency: float = 0.0
    crash: bool = False
    lost_reply: bool = False
    hang: threading.Event | None = None
    hang_outcome: Literal["crash", "run"] = "crash"


class FaultInjector:
    """The live fault switchboard of one memory backend; safe to use from any thread."""

    def __init__(self, plan: FaultPlan | None = None, *, seed: int | None = None) -> None:
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._plan = plan or FaultPlan()
        self._rng = random.Random(seed)
        self._crash_next = 0
        self._hang_left: int | None = 0  # None: hang every call until released
        self._release = threading.Event()
        self._hanging = 0
        # Plain counters, turned into a FaultStats only when read: this runs on every call.
        self._counts = [0, 0, 0, 0]  # errors, crashes, lost replies, hangs
        self._latency = 0.0

    # -- control (tests and harnesses) ---------------------------------------------

    @property
    def plan(self) -> FaultPlan:
        with self._lock:
            return self._plan

    @plan.setter
    def plan(self, plan: FaultPlan) -> None:
        with self._lock:
            self._plan = plan

    def configure(self, **changes: object) -> FaultPlan:
        """Change some fields of the plan (`configure(error_rate=0.2)`); returns the new plan."""
        with self._lock:
            try:
                self._plan = replace(self._plan, **changes)  # type: ignore[arg-type]
            except TypeError as exc:
                raise ValidationError(f"unknown fault setting: {exc}") from None
            return self._plan

    def crash_next(self, calls: int = 1) -> None:
        """Make the next `calls` calls raise `InjectedCrash` (added to any already pending)."""
        if calls < 0:
            raise ValidationError("calls must be >= 0")
        with self._lock:
            self._crash_next += calls

    def hang(self, calls: int | None = None) -> None:
        """Make the next `calls` calls (every call, with None) block until `release()`.

        A hung call waits on an event and honours nothing else, not even its deadline: the
        caller's supervisor has to abandon it, as it would a real stuck connection."""
        if calls is not None and calls < 0:
            raise ValidationError("calls must be >= 0 or None")
        with self._lock:
            if self._release.is_set():
                self._release = threading.Event()
            self._hang_left = calls

    def release(self) -> None:
        """Wake every hung call and stop hanging new ones."""
        with self._lock:
            self._hang_left = 0
            self._release.set()
            self._changed.notify_all()

    def heal(self) -> None:
        """Turn every fault off: a quiet plan, no pending crashes, hung calls released."""
        with self._lock:
            self._plan = FaultPlan(hang_outcome=self._plan.hang_outcome)
            self._crash_next = 0
        self.release()

    @property
    def hanging(self) -> int:
        """How many calls are blocked in a hang right now."""
        with self._lock:
            return self._hanging

    def wait_hanging(self, count: int = 1, timeout: float | None = None) -> bool:
        """Block until at least `count` calls are hung; False if `timeout` passes first."""
        with self._lock:
            return self._changed.wait_for(lambda: self._hanging >= count, timeout)

    @property
    def stats(self) -> FaultStats:
        with self._lock:
            errors, crashes, lost, hangs = self._counts
            return FaultStats(errors, crashes, lost, hangs, self._latency)

    def reset_stats(self) -> None:
        with self._lock:
            self._counts = [0, 0, 0, 0]
            self._latency = 0.0

    # -- the backend's side ---------------------------------------------------------

    def draw(self, op_count: int) -> CallFaults:
        """Decide the faults of one call of `op_count` ops."""
        with self._lock:
            rng, plan = self._rng, self._plan
            # A fixed number of draws per call keeps later calls' fates independent of the
            # plan in force for earlier ones.
            u_crash, u_lost, u_latency = rng.random(), rng.random(), rng.random()
            failed = tuple(rng.random() < plan.error_rate for _ in range(op_count))
            crash = u_crash < plan.crash_rate
            if self._crash_next > 0:
                self._crash_next -= 1
                crash = True
            lost = not crash and u_lost < plan.lost_reply_rate
            low, high = plan.latency if isinstance(plan.latency, tuple) else (plan.latency,) * 2
            latency = low + (high - low) * u_latency
            hang = None
            if self._hang_left is None or self._hang_left > 0:
                if self._hang_left is not None:
                    self._hang_left -= 1
                hang = self._release
            counts = self._counts
            counts[0] += 0 if crash else sum(failed)
            counts[1] += crash
            counts[2] += lost
            counts[3] += hang is not None
            self._latency += latency
            return CallFaults(
                failed_ops=failed,
                latency=latency,
                crash=crash,
                lost_reply=lost,
                hang=hang,
                hang_outcome=plan.hang_outcome,
            )

    def block(self, event: threading.Event) -> None:
        """Wait, counted in `hanging`, until `event` is set by `release()`."""
        with self._lock:
            self._hanging += 1
            self._changed.notify_all()
        try:
            event.wait()
        finally:
            with self._lock:
                self._hanging -= 1
                self._changed.notify_all()
