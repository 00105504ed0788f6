"""`EventRecorder`: count a client's events and wait for them, for tests that must not sleep.

    rec = EventRecorder(client, ["backend_failed", "backend_restarted"])
    ...
    rec.wait("backend_restarted")          # AssertionError after `timeout` seconds

Must not import backends.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable
from typing import Any

__all__ = ["EventRecorder"]


class EventRecorder:
    def __init__(self, client: Any, names: Iterable[str], *, timeout: float = 10.0) -> None:
        self.counts: Counter[str] = Counter()
        self.events: list[Any] = []
        self.timeout = timeout
        self._cond = threading.Condition()
        self._unsubscribe = [client.events.on(name, self._record) for name in names]

    def _record(self, event: Any) -> None:
        with self._cond:
            self.counts[event.name] += 1
            self.events.append(event)
            self._cond.notify_all()

    def wait(self, name: str, count: int = 1, timeout: float | None = None) -> None:
        """Block until `name` has been seen `count` times; AssertionError if it is not."""
        limit = self.timeout if timeout is None else timeout
        with self._cond:
            if not self._cond.wait_for(lambda: self.counts[name] >= count, limit):
                raise AssertionError(f"{name} seen {self.counts[name]} times, wanted {count}")

    def close(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
