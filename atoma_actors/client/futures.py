"""Small helpers over `concurrent.futures.Future`: ready-made ones, and waiting with a clear
timeout error. Must not import sync or any backend.
"""

from __future__ import annotations

from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, TypeVar

__all__ = ["done", "failed", "wait"]

T = TypeVar("T")
U = TypeVar("U")


def done(value: T) -> Future[T]:
    f: Future[T] = Future()
    f.set_result(value)
    return f


def failed(exc: BaseException) -> Future[Any]:
    f: Future[Any] = Future()
    f.set_exception(exc)
    return f


def wait(future: Future[T], timeout: float | None) -> T:
    try:
        return future.result(timeout=timeout)
    except FutureTimeout:
        raise TimeoutError(
            f"no answer within {timeout}s; the operation may still complete"
        ) from None
