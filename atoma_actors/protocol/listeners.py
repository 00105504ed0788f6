"""`Listeners`: a thread-safe list of callbacks with `subscribe -> unsubscribe` and `emit`.

What every notify source (memory storage, SQL backend) and the mock clock need. A listener that
raises is logged and never fails the emitter (a write already applied must not look failed).
Must not import anything from atoma_actors outside `protocol`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["Listeners"]

log = logging.getLogger("atoma_actors")

T = TypeVar("T")


class Listeners(Generic[T]):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._callbacks: list[Callable[[T], None]] = []

    def subscribe(self, callback: Callable[[T], None]) -> Callable[[], None]:
        """Add `callback`; returns an unsubscribe callable (calling it twice is harmless)."""
        with self._lock:
            self._callbacks.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._callbacks:
                    self._callbacks.remove(callback)

        return unsubscribe

    def emit(self, value: T) -> None:
        """Call every listener with `value`, on this thread, outside the lock."""
        with self._lock:
            callbacks = list(self._callbacks)
        for callback in callbacks:
            try:
                callback(value)
            except Exception:
                log.exception("listener %r failed", callback)

    def clear(self) -> None:
        with self._lock:
            self._callbacks.clear()

    def __len__(self) -> int:
        return len(self._callbacks)
