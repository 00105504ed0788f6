"""What an authenticated request may touch (`Scope`), and the mapping of ops and results
between the names a client uses and the names the storage holds.

A scope may carry a resource prefix (tenant `t1` sees `users`, the storage holds `t1:users`)
and an allowlist of client-facing resource names. Imports only `atoma_actors.protocol`.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from atoma_actors.protocol.errors import AuthError, NotFoundError, StandardError
from atoma_actors.protocol.ops import ChangesPullOp, Operation, QueryOp, WriteOp
from atoma_actors.protocol.results import (
    ChangeBatch,
    NotifyMessage,
    OperationResult,
    OperationResultError,
    OperationResultOk,
    WriteItemError,
    WriteResultData,
)

__all__ = ["Scope", "op_resources"]


def op_resources(op: Operation) -> list[str] | None:
    """The client-facing resources an op names (None: a pull over every resource)."""
    if isinstance(op, QueryOp):
        return [op.query.resource]
    if isinstance(op, WriteOp):
        return [op.write.resource]
    if isinstance(op, ChangesPullOp):
        return list(op.pull.resources) if op.pull.resources is not None else None
    return []


@dataclass(frozen=True, slots=True)
class Scope:
    """The answer of an auth hook that lets a request in.

    `resource_prefix` is prepended to every resource on the way to the storage and stripped
    on the way back; `resources` (client-facing names) is an allowlist, None allows all;
    `context` is passed on to the storage's `execute_ops(context=...)`.
    """

    principal: str | None = None
    resource_prefix: str = ""
    resources: frozenset[str] | None = None
    context: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.resources is not None and not isinstance(self.resources, frozenset):
            object.__setattr__(self, "resources", frozenset(self.resources))

    # -- inbound ---------------------------------------------------------------------------

    def check(self, op: Operation, known: Collection[str] | None) -> None:
        """Raise `AuthError` (FORBIDDEN) or `NotFoundError` for a resource this op may not use."""
        names = op_resources(op) or []
        for name in names:
            if self.resources is not None and name not in self.resources:
                raise AuthError(
                    f"resource {name!r} is not allowed for this caller",
                    code="FORBIDDEN",
                    details={"resource": name},
                )
            if known is not None and name not in known:
                raise NotFoundError(
                    f"unknown resource {name!r}",
                    code="UNKNOWN_RESOURCE",
                    details={"resource": name},
                )

    def to_storage(self, op: Operation) -> Operation:
        """The op with storage-side resource names (and a pull limited to this scope)."""
        p = self.resource_prefix
        if isinstance(op, QueryOp):
            if not p:
                return op
            query = op.query.model_copy(update={"resource": p + op.query.resource})
            return op.model_copy(update={"query": query})
        if isinstance(op, WriteOp):
            if not p:
                return op
            write = op.write.model_copy(update={"resource": p + op.write.resource})
            return op.model_copy(update={"write": write})
        if isinstance(op, ChangesPullOp):
            names = op.pull.resources
            if names is None and self.resources is not None:
                names = sorted(self.resources)
            if names is None and not p:
                return op
            mapped = [p + n for n in names] if names is not None else None
            return op.model_copy(update={"pull": op.pull.model_copy(update={"resources": mapped})})
        return op

    @property
    def needs_pull_filter(self) -> bool:
        """A prefix without an allowlist: pulls over all resources must be filtered after."""
        return bool(self.resource_prefix) and self.resources is None

    # -- outbound --------------------------------------------------------------------------

    def client_name(self, storage_name: str) -> str | None:
        """The client-facing name of a storage resource, or None when out of scope."""
        p = self.resource_prefix
        if p:
            if not storage_name.startswith(p):
                return None
            storage_name = storage_name[len(p) :]
        if self.resources is not None and storage_name not in self.resources:
            return None
        return storage_name

    def _error(self, error: StandardError) -> StandardError:
        details = error.details
        if not self.resource_prefix or not details or not isinstance(details.get("resource"), str):
            return error
        name = details["resource"]
        if name.startswith(self.resource_prefix):
            name = name[len(self.resource_prefix) :]
        message = error.message.replace(self.resource_prefix, "")
        return error.model_copy(
            update={"details": {**details, "resource": name}, "message": message}
        )

    def filter_changes(self, batch: ChangeBatch) -> ChangeBatch:
        changes = []
        for change in batch.changes:
            name = self.client_name(change.resource)
            if name is not None:
                changes.append(change.model_copy(update={"resource": name}))
        return batch.model_copy(update={"changes": changes})

    def from_storage(self, result: OperationResult) -> OperationResult:
        """The result with client-facing names (tenant prefixes never leave the server)."""
        if not self.resource_prefix and self.resources is None:
            return result
        if isinstance(result, OperationResultError):
            return result.model_copy(update={"error": self._error(result.error)})
        assert isinstance(result, OperationResultOk)
        data = result.data
        if isinstance(data, ChangeBatch):
            return result.model_copy(update={"data": self.filter_changes(data)})
        if isinstance(data, WriteResultData) and self.resource_prefix:
            items = [
                item.model_copy(update={"error": self._error(item.error)})
                if isinstance(item, WriteItemError)
                else item
                for item in data.results
            ]
            return result.model_copy(update={"data": data.model_copy(update={"results": items})})
        return result

    def notify(self, message: NotifyMessage, wanted: Iterable[str] | None) -> NotifyMessage | None:
        """The message as this subscriber should see it, or None when none of it is theirs."""
        if message.resources is None:
            names = None
        else:
            names = [n for n in map(self.client_name, message.resources) if n is not None]
            if wanted is not None:
                want = set(wanted)
                names = [n for n in names if n in want]
            if not names:
                return None
        return message.model_copy(update={"resources": names})


OPEN = Scope()
"""The scope of a request when there is no auth hook: everything, unprefixed."""
