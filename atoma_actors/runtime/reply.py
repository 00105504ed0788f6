"""One-shot replies: how a request carries its answer back without anyone blocking.

A `Reply` wraps a callable that delivers an outcome (usually an actor `tell` or setting a
future). It fires at most once: the first outcome wins, later ones (a late answer from a
backend call that was already abandoned) are dropped. Must not import client or any backend.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Generic, TypeVar

__all__ = ["Reply", "future_reply", "settle"]

T = TypeVar("T")

log = logging.getLogger("atoma_actors.runtime")


class Reply(Generic[T]):
    __slots__ = ("_deliver", "_done", "_lock")

    def __init__(self, deliver: Callable[[T | BaseException], object]) -> None:
        self._deliver = deliver
        self._done = False
        self._lock = threading.Lock()

    @property
    def done(self) -> bool:
        return self._done

    def __call__(self, outcome: T | BaseException) -> bool:
        """Deliver `outcome` (a value or an exception); False if already answered."""
        with self._lock:
            if self._done:
                return False
            self._done = True
        try:
            self._deliver(outcome)
        except Exception:
            # Delivering runs on an actor's thread: a broken receiver must not kill it.
            log.exception("a reply could not be delivered")
        return True


def settle(future: Future[Any], outcome: Any) -> None:
    """Settle `future` with a value or an exception, unless its caller cancelled it."""
    if not future.set_running_or_notify_cancel():
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


def future_reply(future: Future[Any]) -> Reply[Any]:
    """A reply that settles `future` (exceptions become the future's exception)."""

    def deliver(outcome: Any) -> None:
        settle(future, outcome)

    return Reply(deliver)
