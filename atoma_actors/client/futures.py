"""Small helpers over `concurrent.futures.Future`: mapping, chaining, and waiting with a clear
timeout error. Futures settle on whatever thread completes them, so callbacks here must stay
quick and never block. Must not import sync or any backend.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, TypeVar

__all__ = ["chain", "done", "failed", "map_future", "wait"]

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


def map_future(source: Future[T], fn: Callable[[T], U]) -> Future[U]:
    """A future of `fn(result)`; an exception from `source` or `fn` becomes its exception."""
    out: Future[U] = Future()

    def settle(src: Future[T]) -> None:
        try:
            out.set_result(fn(src.result()))
        except BaseException as exc:
            out.set_exception(exc)

    source.add_done_callback(settle)
    return out


def chain(source: Future[T], fn: Callable[[T], Future[U]]) -> Future[U]:
    """A future of the future `fn(result)` returns (for a step that needs a prior answer)."""
    out: Future[U] = Future()

    def forward(inner: Future[U]) -> None:
        exc = inner.exception()
        if exc is not None:
            out.set_exception(exc)
        else:
            out.set_result(inner.result())

    def settle(src: Future[T]) -> None:
        try:
            nxt = fn(src.result())
        except BaseException as exc:
            out.set_exception(exc)
            return
        nxt.add_done_callback(forward)

    source.add_done_callback(settle)
    return out


def wait(future: Future[T], timeout: float | None) -> T:
    try:
        return future.result(timeout=timeout)
    except FutureTimeout:
        raise TimeoutError(
            f"no answer within {timeout}s; the operation may still complete"
        ) from None
