"""The EventBus actor: subscriptions, and delivery of events on its own thread.

Handlers never run on a StoreActor's thread (or any other actor's): an emitter only `tell`s.
A handler that raises is logged and stays subscribed. Must not import client or any backend.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pykka

from .actor import Actor

__all__ = ["EVENT_NAMES", "Event", "EventBus"]

log = logging.getLogger("atoma_actors.events")

EVENT_NAMES = frozenset(
    {
        "store_created",
        "read_start",
        "read_finish",
        "write_start",
        "write_committed",
        "write_failed",
        "change_optimistic",
        "change_committed",
        "change_rolled_back",
        "backend_failed",
        "backend_restarted",
        "circuit_opened",
        "circuit_half_open",
        "circuit_closed",
        "*",
    }
)


@dataclass(frozen=True, slots=True)
class Event:
    name: str
    payload: dict[str, Any]
    time_ms: int


@dataclass(frozen=True, slots=True)
class _Deliver:
    event: Event


class _Delivery(Actor):
    def __init__(self, bus: EventBus) -> None:
        super().__init__()
        self._bus = bus

    def on_receive(self, message: Any) -> None:
        if isinstance(message, _Deliver):
            self._bus._dispatch(message.event)


class EventBus:
    """`on(name, handler) -> unsubscribe`; `emit(name, **payload)` from any thread."""

    def __init__(self, time_ms: Callable[[], int]) -> None:
        self._time_ms = time_ms
        self._lock = threading.Lock()
        self._handlers: dict[str, tuple[Callable[[Event], None], ...]] = {}
        self._actor: pykka.ActorRef[Any] | None = _Delivery.start(self)

    @property
    def actor_ref(self) -> pykka.ActorRef[Any] | None:
        return self._actor

    def on(self, name: str, handler: Callable[[Event], None]) -> Callable[[], None]:
        if name not in EVENT_NAMES:
            from atoma_actors.protocol.errors import ValidationError

            raise ValidationError(f"unknown event {name!r}; known: {sorted(EVENT_NAMES)}")
        with self._lock:
            self._handlers[name] = (*self._handlers.get(name, ()), handler)

        def unsubscribe() -> None:
            with self._lock:
                self._handlers[name] = tuple(
                    h for h in self._handlers.get(name, ()) if h is not handler
                )

        return unsubscribe

    def wants(self, name: str) -> bool:
        """Cheap check so emitters skip building payloads nobody listens to."""
        return bool(self._handlers.get(name) or self._handlers.get("*"))

    def emit(self, name: str, **payload: Any) -> None:
        actor = self._actor
        if actor is None or not self.wants(name):
            return
        actor.tell(_Deliver(Event(name, payload, self._time_ms())))

    def stop(self) -> None:
        actor, self._actor = self._actor, None
        if actor is not None:
            actor.stop(block=True, timeout=5)

    def _dispatch(self, event: Event) -> None:
        handlers = self._handlers.get(event.name, ()) + self._handlers.get("*", ())
        for handler in handlers:
            try:
                handler(event)
            except Exception:
                log.exception("event handler for %s failed", event.name)
