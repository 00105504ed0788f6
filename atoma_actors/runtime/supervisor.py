"""The Supervisor actor: restart policy and circuit state of the backend groups.

It hears `Failure`s (an actor crashed, a call passed its deadline, the client reported the
backend unavailable). For a crash or a hang it disowns that actor and fails every call in flight
on it with a retryable `BackendUnavailable` (the writers' StoreActors roll those changes back),
then restarts the slot after an exponential backoff (one-for-one). Too many failures within a
window open the group's circuit: calls fail fast while local reads keep working; after
`circuit_reset` one probe call is let through, and its success closes the circuit again.
Must not import client or any backend.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from atoma_actors.protocol.errors import BackendUnavailable

from .actor import Actor
from .backend_actor import BackendGroup, Failure
from .clock import Clock, Scheduler

__all__ = ["Recovered", "Supervisor", "SupervisorPolicy"]

log = logging.getLogger("atoma_actors.runtime")


@dataclass(frozen=True, slots=True)
class SupervisorPolicy:
    backoff_base: float = 0.02
    backoff_max: float = 2.0
    max_failures: int = 5
    window: float = 10.0
    circuit_reset: float = 1.0


@dataclass(frozen=True, slots=True)
class Recovered:
    group: str


@dataclass(frozen=True, slots=True)
class _RestartDue:
    group: str
    slot: int


@dataclass(frozen=True, slots=True)
class _ProbeDue:
    group: str


@dataclass(slots=True)
class _Health:
    failures: deque[float] = field(default_factory=deque)
    consecutive: int = 0
    restarts: int = 0


class Supervisor(Actor):
    def __init__(
        self,
        groups: dict[str, BackendGroup],
        policy: SupervisorPolicy,
        clock: Clock,
        scheduler: Scheduler,
        emit: Callable[..., None],
    ) -> None:
        super().__init__()
        self._groups = groups
        self._policy = policy
        self._clock = clock
        self._scheduler = scheduler
        self._emit = emit
        self._health = {name: _Health() for name in groups}

    def on_receive(self, message: Any) -> None:
        if isinstance(message, Failure):
            self._failed(message)
        elif isinstance(message, Recovered):
            self._recovered(message.group)
        elif isinstance(message, _RestartDue):
            group = self._groups[message.group]
            if group.state != "open":
                group.restart_slot(message.slot)
                self._health[message.group].restarts += 1
                self._emit("backend_restarted", backend=message.group, slot=message.slot)
        elif isinstance(message, _ProbeDue):
            group = self._groups[message.group]
            group.restart_all()
            group.set_state("half_open")
            self._emit("circuit_half_open", backend=message.group)

    def _failed(self, failure: Failure) -> None:
        group = self._groups[failure.group]
        health = self._health[failure.group]
        if failure.reason in ("crash", "hang"):
            error = BackendUnavailable(
                f"{failure.group}: backend actor {failure.reason} ({failure.error})"
            )
            if not group.fail_slot(failure.slot, failure.generation, error):
                return  # already handled for this actor
        elif not group.is_current(failure.slot, failure.generation):
            return  # a late answer from an actor already replaced says nothing of the new one
        else:
            group.set_state(group.state, degraded=True)
        now = self._clock.now()
        health.failures.append(now)
        while health.failures and health.failures[0] < now - self._policy.window:
            health.failures.popleft()
        health.consecutive += 1
        self._emit(
            "backend_failed",
            backend=failure.group,
            slot=failure.slot,
            reason=failure.reason,
            error=failure.error,
        )
        if group.state == "half_open" or len(health.failures) > self._policy.max_failures:
            if group.state != "open":
                group.set_state("open")
                self._emit("circuit_opened", backend=failure.group, failures=len(health.failures))
                me = self.actor_ref
                self._scheduler.call_later(
                    self._policy.circuit_reset, lambda: me.tell(_ProbeDue(failure.group))
                )
            return
        if failure.reason in ("crash", "hang"):
            delay = min(
                self._policy.backoff_max,
                self._policy.backoff_base * 2 ** (health.consecutive - 1),
            )
            me = self.actor_ref
            self._scheduler.call_later(
                delay, lambda: me.tell(_RestartDue(failure.group, failure.slot))
            )

    def _recovered(self, name: str) -> None:
        group = self._groups[name]
        health = self._health[name]
        was_open = group.state != "closed"
        if group.state == "open":
            return  # a late success from before the circuit opened proves nothing
        health.consecutive = 0
        health.failures.clear()
        group.set_state("closed", degraded=False)
        if was_open:
            self._emit("circuit_closed", backend=name)
