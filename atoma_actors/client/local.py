"""The embedded default's ops endpoint: what a client with no backend answers raw ops with.

With no backend, each StoreActor is its own backend: writes are decided and confirmed in
the store, and reads evaluate its entities, so nothing is held twice. Plugins may still send
raw ops (`ctx.store`): `LocalOps` answers queries from the stores' entities and refuses
writes and `changes.pull` with a validation error (the stores keep no change log). A client
whose plugins add ops handlers keeps the full ops path, so those handlers see every op: then
the stores write through to a `MemoryStorage` (`LocalOps(storage=...)` delegates to it).
Must not import sync or any backend.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from atoma_actors.core.query import normalize_query
from atoma_actors.core.storage import MemoryStorage
from atoma_actors.protocol.backend import OpsOutcome
from atoma_actors.protocol.errors import AtomaError, ValidationError
from atoma_actors.protocol.ops import Meta, Operation, QueryOp
from atoma_actors.protocol.results import (
    OperationResult,
    OperationResultError,
    OperationResultOk,
    PageInfo,
    QueryResultData,
)
from atoma_actors.runtime.view import StoreView

__all__ = ["LocalOps"]


class LocalOps:
    """An ops client over the stores themselves (or, with `storage`, over that storage)."""

    def __init__(self, view_of: Callable[[str], StoreView]) -> None:
        self._view_of = view_of
        self.storage: MemoryStorage | None = None

    def execute_ops(
        self,
        ops: Sequence[Operation],
        meta: Meta,
        *,
        deadline: float | None = None,
        context: dict[str, Any] | None = None,
    ) -> OpsOutcome:
        if self.storage is not None:
            return self.storage.execute_ops(ops, meta, deadline=deadline, context=context)
        return [self._run(op) for op in ops], 200

    def _run(self, op: Operation) -> OperationResult:
        try:
            if not isinstance(op, QueryOp):
                raise ValidationError(
                    f"the embedded default answers query ops only, not {op.kind!r}: "
                    "writes go through the store API; for a change log use a MemoryBackend",
                    code="UNSUPPORTED_OP",
                )
            view = self._view_of(op.query.resource)
            result = view.query_local(normalize_query(op.query.query))
            data = QueryResultData(
                data=result.data, page_info=result.page_info or PageInfo(has_next=False)
            )
            return OperationResultOk(op_id=op.op_id, data=data)
        except AtomaError as exc:
            return OperationResultError(op_id=op.op_id, error=exc.error)
