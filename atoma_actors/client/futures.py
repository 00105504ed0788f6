"""Small helpers over `concurrent.futures.Future`: the futures the facade hands out, ready-made
ones, and waiting with a clear timeout error. Must not import sync or any backend.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures._base import PENDING as _PENDING
from typing import Any, TypeVar

__all__ = ["CallFuture", "done", "failed", "wait"]

T = TypeVar("T")
U = TypeVar("U")


class CallFuture(Future[T]):
    """A `concurrent.futures.Future` whose condition sits on a plain lock, not a re-entrant
    one. No method of `Future` (nor `wait`/`as_completed`) takes a future's condition twice,
    and the plain lock spares three bound methods per future: a worker keeping thousands of
    writes in flight gives the garbage collector that much less to walk."""

    def __init__(self) -> None:
        # `Future.__init__`'s fields (stable since Python 3.2), without its RLock condition.
        self._condition = threading.Condition(threading.Lock())
        self._state = _PENDING
        self._result = None
        self._exception = None
        self._waiters: list[Any] = []
        self._done_callbacks: list[Any] = []


def done(value: T) -> Future[T]:
    f: Future[T] = CallFuture()
    f.set_result(value)
    return f


def failed(exc: BaseException) -> Future[Any]:
    f: Future[Any] = CallFuture()
    f.set_exception(exc)
    return f


def wait(future: Future[T], timeout: float | None) -> T:
    try:
        return future.result(timeout=timeout)
    except FutureTimeout:
        raise TimeoutError(
            f"no answer within {timeout}s; the operation may still complete"
        ) from None
