"""Time for the runtime: the `Clock` protocol, the real clock, and the `Scheduler` that runs
timers (queue flush delays, restart backoff, op deadlines) against whatever clock the client has.

With the real clock, timers run on a monotonic source that freezegun does not patch, so under
`freeze_time` delays and backoffs still elapse and nothing hangs (`flush()` forces a queue out
at once). With a simulated clock (`MockClock`) timers follow it exactly: they fire when
`advance()` passes them, and `advance()` wakes the scheduler at once.
Must not import client or any backend.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "RealClock", "Scheduler", "TimerHandle"]

# freezegun patches time.monotonic but not clock_gettime: the scheduler's backstop needs a
# clock that keeps moving while a test has frozen time.
if hasattr(time, "clock_gettime"):

    def _real_monotonic() -> float:
        return time.clock_gettime(time.CLOCK_MONOTONIC)

else:  # pragma: no cover - platforms without clock_gettime
    _real_monotonic = time.monotonic

log = logging.getLogger("atoma_actors.runtime")


@runtime_checkable
class Clock(Protocol):
    def now(self) -> float:
        """Monotonic seconds: durations, deadlines and timers."""
        ...

    def time_ms(self) -> int:
        """Wall-clock milliseconds: `clientTimeMs` and event timestamps."""
        ...


class RealClock:
    """Real time (both readings go through `time`, so freezegun can freeze them)."""

    def now(self) -> float:
        return time.monotonic()

    def time_ms(self) -> int:
        return int(time.time() * 1000)

    def subscribe(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Real time moves by itself: nothing to announce."""
        return lambda: None


def _nothing() -> None:
    return None


class TimerHandle:
    __slots__ = ("_cancelled", "_on_cancel", "callback", "due")

    def __init__(
        self,
        due: float,
        callback: Callable[[], object],
        on_cancel: Callable[[], None] | None = None,
    ) -> None:
        self.due = due
        self.callback = callback
        self._cancelled = False
        self._on_cancel = on_cancel

    def cancel(self) -> None:
        if not self._cancelled:
            self._cancelled = True
            # The heap keeps a cancelled handle until it is due or compacted away: it must
            # not keep what the callback holds (an op deadline holds the whole call) alive.
            self.callback = _nothing
            if self._on_cancel is not None:
                self._on_cancel()

    @property
    def cancelled(self) -> bool:
        return self._cancelled


class Scheduler:
    """One daemon thread running callbacks when the client's clock reaches their due time.

    Callbacks must be quick and non-blocking (typically an actor `tell`)."""

    # Bounds each wait: a simulated clock may move without a wake-up call.
    _MAX_WAIT = 0.05
    _COMPACT_AT = 4096

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        # With the real clock, timers run on a monotonic source freezegun does not patch:
        # freezegun fakes time.monotonic for some threads and not others (it looks at the
        # call stack), so mixing the two would leave timers due in another time domain.
        # A simulated clock (MockClock) is honoured exactly: it moves only on advance().
        self._now = _real_monotonic if isinstance(clock, RealClock) else clock.now
        self._heap: list[tuple[float, int, TimerHandle]] = []
        self._seq = itertools.count()
        self._cancelled = 0
        self._cond = threading.Condition()
        self._stopped = False
        subscribe = getattr(clock, "subscribe", None)
        self._unsubscribe = subscribe(self.wake) if subscribe else (lambda: None)
        self._thread = threading.Thread(target=self._run, name="atoma-scheduler", daemon=True)
        self._thread.start()

    def call_later(self, delay: float, callback: Callable[[], object]) -> TimerHandle:
        handle = TimerHandle(self._now() + max(0.0, delay), callback, self._note_cancel)
        with self._cond:
            if self._cancelled > self._COMPACT_AT and 2 * self._cancelled > len(self._heap):
                # most timers are op deadlines cancelled when their op answered: drop them
                self._heap = [item for item in self._heap if not item[2].cancelled]
                heapq.heapify(self._heap)
                self._cancelled = 0
            earliest = not self._heap or handle.due < self._heap[0][0]
            heapq.heappush(self._heap, (handle.due, next(self._seq), handle))
            if earliest:  # only a new earliest timer changes how long the thread sleeps
                self._cond.notify()
        return handle

    def _note_cancel(self) -> None:
        self._cancelled += 1  # a hint for compaction; an occasional lost increment is harmless

    def wake(self) -> None:
        with self._cond:
            self._cond.notify()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._heap.clear()
            self._cond.notify()
        self._unsubscribe()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            due: list[TimerHandle] = []
            with self._cond:
                if self._stopped:
                    return
                now = self._now()
                while self._heap and self._heap[0][0] <= now:
                    due.append(heapq.heappop(self._heap)[2])
                if not due:
                    wait = self._heap[0][0] - now if self._heap else None
                    wait = self._MAX_WAIT if wait is None else min(wait, self._MAX_WAIT)
                    self._cond.wait(wait)
                    continue
            for handle in due:
                if handle.cancelled:
                    continue
                try:
                    handle.callback()
                except Exception:
                    log.exception("timer callback failed")
