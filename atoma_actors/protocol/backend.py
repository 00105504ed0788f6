"""What a backend is, as the client sees it: `Backend(key, store=Endpoint(ops_client), ...)`.

An ops client has one method, `execute_ops(ops, meta, *, deadline=None, context=None)`,
returning `(results, status)` with exactly one `OperationResult` per op, in order.
Backend packages implement these; the runtime consumes them. Must not import runtime or client.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from .ops import Meta, Operation
from .results import NotifyMessage, OperationResult

__all__ = [
    "Backend",
    "Capabilities",
    "Endpoint",
    "NotifySource",
    "OpsClient",
    "OpsOutcome",
]

OpsOutcome = tuple[list[OperationResult], int]
"""`(results, status)`: one result per op, in op order, and an HTTP-like status (200 = ok)."""


@runtime_checkable
class OpsClient(Protocol):
    def execute_ops(
        self,
        ops: Sequence[Operation],
        meta: Meta,
        *,
        deadline: float | None = None,
        context: dict[str, Any] | None = None,
    ) -> OpsOutcome:
        """Run `ops` and return one result per op. `deadline` is an absolute
        `time.monotonic()` value after which the caller stops waiting."""
        ...


class NotifySource(Protocol):
    def subscribe(self, callback: Callable[[NotifyMessage], None]) -> Callable[[], None]:
        """Call `callback` whenever resources change; returns an unsubscribe callable."""
        ...


@dataclass(frozen=True, slots=True)
class Capabilities:
    store_persistence: Literal["ephemeral", "durable", "remote"] = "remote"


@dataclass(frozen=True, slots=True)
class Endpoint:
    ops_client: OpsClient


@dataclass(frozen=True, slots=True)
class Backend:
    key: str
    store: Endpoint
    remote: Endpoint | None = None
    capabilities: Capabilities = field(default_factory=Capabilities)
    notify: NotifySource | None = None
    dispose: Callable[[], None] | None = None
