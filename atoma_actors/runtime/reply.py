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

__all__ = ["BatchReply", "Reply", "deliver_all", "future_reply", "settle"]

T = TypeVar("T")

log = logging.getLogger("atoma_actors.runtime")

# One lock for every reply's claim (a check and a flag: held for well under a microsecond),
# rather than a lock object per reply that thousands in flight would each keep.
_CLAIM = threading.Lock()


class Reply(Generic[T]):
    """Wraps `deliver`; subclasses may override `deliver` instead (one object per reply,
    no closure: thousands are in flight at once, and each closure is more for the
    collector to walk)."""

    __slots__ = ("_deliver", "_done")

    def __init__(self, deliver: Callable[[T | BaseException], object] | None = None) -> None:
        self._deliver = deliver
        self._done = False

    def deliver(self, outcome: T | BaseException) -> None:
        assert self._deliver is not None
        self._deliver(outcome)

    @property
    def done(self) -> bool:
        return self._done

    def claim(self) -> bool:
        """Mark this reply answered; False if it already was (then deliver nothing)."""
        with _CLAIM:
            if self._done:
                return False
            self._done = True
            return True

    def __call__(self, outcome: T | BaseException) -> bool:
        """Deliver `outcome` (a value or an exception); False if already answered."""
        if not self.claim():
            return False
        try:
            self.deliver(outcome)
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


Sink = Callable[[list[tuple[Any, Any]]], object]


class BatchReply(Reply[T]):
    """A reply whose receiver takes many answers in one message: `sink([(tag, outcome), ...])`.

    Alone it delivers `[(tag, outcome)]`; `deliver_all` hands every answer for one sink over
    in a single call (one actor message for a whole batch instead of one per request)."""

    __slots__ = ("sink", "tag")

    def __init__(self, sink: Sink, tag: Any) -> None:
        super().__init__()
        self.sink = sink
        self.tag = tag

    def deliver(self, outcome: T | BaseException) -> None:
        self.sink([(self.tag, outcome)])


def deliver_all(answers: list[tuple[Reply[Any], Any]]) -> None:
    """Deliver each `(reply, outcome)`; answers for the same `BatchReply` sink go together,
    in order. A reply already answered is skipped, as `Reply.__call__` would."""
    grouped: dict[Sink, list[tuple[Any, Any]]] = {}  # a sink compares as itself
    for reply, outcome in answers:
        if isinstance(reply, BatchReply):
            if reply.claim():
                grouped.setdefault(reply.sink, []).append((reply.tag, outcome))
        else:
            reply(outcome)
    for sink, items in grouped.items():
        try:
            sink(items)
        except Exception:
            log.exception("a reply could not be delivered")
