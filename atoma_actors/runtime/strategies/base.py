"""What every strategy shares: the read request message, building ops from store entries,
and mapping op results back onto the entries that produced them.

Must not import client or any backend.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Sequence
from typing import Any

from atoma_actors.core.query import Query
from atoma_actors.protocol.errors import AdapterError, AtomaError, error_from_standard
from atoma_actors.protocol.ops import Meta, QueryOp, QuerySpec, WriteEntry, WriteOp, WriteSpec
from atoma_actors.protocol.results import (
    OperationResult,
    OperationResultOk,
    QueryResultData,
    WriteItemError,
    WriteItemOk,
    WriteResultData,
)

__all__ = [
    "group_entries",
    "new_op_id",
    "query_op",
    "read_result",
    "split_write_results",
]

_op_seq = itertools.count(1)
_op_prefix = uuid.uuid4().hex[:8]


def new_op_id() -> str:
    return f"{_op_prefix}-{next(_op_seq)}"


def group_entries(resource: str, entries: Sequence[WriteEntry]) -> list[tuple[WriteOp, list[int]]]:
    """One `WriteOp` per (action, options) group, in first-appearance order, with the index of
    each op entry in `entries`."""
    groups: dict[tuple[str, Any], list[int]] = {}
    for index, entry in enumerate(entries):
        groups.setdefault((entry.action, entry.options), []).append(index)
    return [
        (
            WriteOp(
                op_id=new_op_id(),
                write=WriteSpec(resource=resource, entries=[entries[i] for i in idx]),
            ),
            idx,
        )
        for idx in groups.values()
    ]


def split_write_results(
    count: int,
    groups: Sequence[tuple[WriteOp, list[int]]],
    outcome: Any,
) -> list[WriteItemOk | WriteItemError | AtomaError]:
    """Per-entry outcomes (aligned with the original entries) from a chain outcome."""
    if isinstance(outcome, BaseException):
        error = outcome if isinstance(outcome, AtomaError) else AdapterError(repr(outcome))
        return [error] * count
    results, _status = outcome
    by_op: dict[str, OperationResult] = {r.op_id: r for r in results}
    out: list[WriteItemOk | WriteItemError | AtomaError] = [
        AdapterError("no result for entry")
    ] * count
    for op, indexes in groups:
        items = _op_items(op, by_op.get(op.op_id), len(indexes))
        if isinstance(items, AtomaError):
            for i in indexes:
                out[i] = items
        else:
            for i, item in zip(indexes, items, strict=True):
                out[i] = item
    return out


def _op_items(
    op: WriteOp, result: OperationResult | None, count: int
) -> list[WriteItemOk | WriteItemError] | AtomaError:
    """The item results of one write op, or the one error that fails all its entries."""
    if result is None:
        return AdapterError(f"no result for op {op.op_id}")
    if not isinstance(result, OperationResultOk):
        return error_from_standard(result.error)
    data = result.data
    if not isinstance(data, WriteResultData) or len(data.results) != count:
        return AdapterError(f"op {op.op_id}: write result does not match its entries")
    return list(data.results)


def query_op(resource: str, query: Query) -> QueryOp:
    return QueryOp(op_id=new_op_id(), query=QuerySpec(resource=resource, query=query.to_wire()))


def read_result(outcome: Any) -> QueryResultData | AtomaError:
    """The query data of a one-op read outcome, or the error it carries."""
    if isinstance(outcome, BaseException):
        return outcome if isinstance(outcome, AtomaError) else AdapterError(repr(outcome))
    results, _status = outcome
    result = results[0]
    if not isinstance(result, OperationResultOk):
        return error_from_standard(result.error)
    if not isinstance(result.data, QueryResultData):
        return AdapterError("query op answered with non-query data")
    return result.data


def meta_for(time_ms: int, device_id: str | None = None) -> Meta:
    return Meta(client_time_ms=time_ms, device_id=device_id)
