"""The ops chain: `OpsCall` messages flowing through ops handler actors to a backend.

Each handler (added by a plugin with `ctx.io.use(handler, priority)`) runs in its own actor.
Higher priority runs first, closest to the caller; the backend group is always last. A handler
sees each call on the way in (`on_request`: pass it on, change it, or answer it) and each
outcome on the way out (`on_response`: pass it on, change it, or return `Retry` to send the
call down the chain again). All hops are `tell`s carrying a `Reply`, so many calls are in
flight at once and no handler ever waits for another actor.
Must not import client or any backend.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import pykka

from atoma_actors.protocol.backend import OpsOutcome
from atoma_actors.protocol.ops import Meta, Operation

from .actor import Actor
from .reply import Reply

__all__ = [
    "HandlerActor",
    "OpsCall",
    "OpsHandler",
    "Outcome",
    "Retry",
    "Submit",
    "build_chain",
]

Outcome = OpsOutcome | BaseException
Submit = Callable[["OpsCall", Reply[Any]], None]
"""Send a call down (to the next handler, or to the backend group at the end)."""

_call_ids = itertools.count(1)


@dataclass(frozen=True, slots=True)
class OpsCall:
    """A batch of ops for one endpoint, with its routing facts."""

    ops: tuple[Operation, ...]
    meta: Meta
    store: str = ""
    endpoint: str = "store"
    route_key: str = ""
    keys: tuple[str, ...] = ()
    """The entities this call touches (`store/id`): the backend group keeps their order."""
    deadline: float | None = None
    context: dict[str, Any] = field(default_factory=dict)
    attempt: int = 1
    call_id: int = field(default_factory=lambda: next(_call_ids))

    def evolve(self, **changes: Any) -> OpsCall:
        return replace(self, **changes)


@dataclass(frozen=True, slots=True)
class Retry:
    """Returned by `on_response` to send the call down the chain again (same idempotency keys)."""

    call: OpsCall


class OpsHandler(Protocol):
    """What a plugin hands to `ctx.io.use`. Both methods are optional."""

    def on_request(self, call: OpsCall) -> OpsCall | OpsOutcome: ...

    def on_response(self, call: OpsCall, outcome: Outcome) -> Outcome | Retry: ...


@dataclass(frozen=True, slots=True)
class _Request:
    call: OpsCall
    reply: Reply[Any]


@dataclass(frozen=True, slots=True)
class _Response:
    call: OpsCall
    reply: Reply[Any]
    outcome: Outcome


class HandlerActor(Actor):
    """Runs one ops handler. Its state is the handler object's own."""

    def __init__(self, handler: Any, downstream: Submit) -> None:
        super().__init__()
        self._handler = handler
        self._downstream = downstream
        self._on_request = getattr(handler, "on_request", None)
        self._on_response = getattr(handler, "on_response", None)

    def submit(self, call: OpsCall, reply: Reply[Any]) -> None:
        self.actor_ref.tell(_Request(call, reply))

    def on_receive(self, message: Any) -> None:
        if isinstance(message, _Request):
            self._request(message.call, message.reply)
        elif isinstance(message, _Response):
            self._response(message)

    def _request(self, call: OpsCall, reply: Reply[Any]) -> None:
        try:
            passed = self._on_request(call) if self._on_request else call
        except Exception as exc:
            reply(exc)
            return
        if not isinstance(passed, OpsCall):
            reply(passed)
            return
        if self._on_response is None:
            self._downstream(passed, reply)
            return
        me = self.actor_ref

        def back(outcome: Outcome) -> None:
            me.tell(_Response(passed, reply, outcome))

        self._downstream(passed, Reply(back))

    def _response(self, message: _Response) -> None:
        try:
            result = self._on_response(message.call, message.outcome)  # type: ignore[misc]
        except Exception as exc:
            result = exc
        if isinstance(result, Retry):
            self._request(result.call.evolve(attempt=message.call.attempt + 1), message.reply)
            return
        message.reply(result)


def build_chain(
    handlers: Sequence[tuple[int, Any]], terminal: Submit
) -> tuple[Submit, list[pykka.ActorRef[Any]]]:
    """Start one actor per handler (highest priority first) in front of `terminal`.

    Returns the entry point of the chain and the actors started (to stop on close)."""
    ordered = sorted(enumerate(handlers), key=lambda item: (-item[1][0], item[0]))
    submit = terminal
    refs: list[pykka.ActorRef[Any]] = []
    for _, (_, handler) in reversed(ordered):
        ref = HandlerActor.start(handler, submit)
        refs.append(ref)

        def submit_to(call: OpsCall, reply: Reply[Any], _ref: pykka.ActorRef[Any] = ref) -> None:
            _ref.tell(_Request(call, reply))

        submit = submit_to
    return submit, refs
