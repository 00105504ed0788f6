"""`MockClock`: virtual time that only moves when a test or harness says so.

Timers scheduled against it fire when `advance()` passes their due time, so a simulation with
a seed and a MockClock replays identically. Must not import client or any backend.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from atoma_actors.protocol.listeners import Listeners

__all__ = ["MockClock"]


class MockClock:
    def __init__(self, start: float = 0.0, wall_ms: int = 1_700_000_000_000) -> None:
        self._now = start
        self._wall0 = wall_ms
        self._start = start
        self._lock = threading.Lock()
        self._listeners: Listeners[None] = Listeners()

    def now(self) -> float:
        return self._now

    def time_ms(self) -> int:
        return self._wall0 + int((self._now - self._start) * 1000)

    def advance(self, seconds: float) -> None:
        """Move time forward and wake every scheduler using this clock."""
        if seconds < 0:
            raise ValueError("time only moves forward")
        with self._lock:
            self._now += seconds
        self._listeners.emit(None)

    def sleep(self, seconds: float) -> None:
        """A `sleep` for simulated backends: advances virtual time instead of waiting."""
        self.advance(seconds)

    def subscribe(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call `callback()` whenever time moves; returns an unsubscribe callable."""
        return self._listeners.subscribe(lambda _: callback())
