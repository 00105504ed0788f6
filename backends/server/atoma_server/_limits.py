"""Request limits of the ops server and the checks that enforce them.

Request-shaped limits (body bytes, ops and queries per request) reject the whole request;
op-shaped limits (page size, entries per write, item payload bytes, nesting depth) fail only
the op that breaks them, so one bad op never sinks the others. Every check raises a typed
error from `atoma_actors.protocol.errors`. Imports only `atoma_actors.protocol`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from atoma_actors.protocol.errors import LimitsError, ValidationError
from atoma_actors.protocol.ops import ChangesPullOp, Meta, Operation, QueryOp, WriteOp

__all__ = ["Limits", "check_op", "check_request", "check_value"]

_INT_MIN = -(2**63)
_INT_MAX = 2**64 - 1  # the widest integer msgpack can carry back to a client


@dataclass(frozen=True, slots=True)
class Limits:
    """What one request may ask of the server. `None` switches a limit off."""

    max_body_bytes: int | None = 4 * 1024 * 1024
    max_ops: int | None = 100
    max_queries: int | None = 20
    max_page_limit: int | None = 1000
    max_write_entries: int | None = 1000
    max_item_bytes: int | None = 256 * 1024
    max_depth: int = 64
    """Nesting depth of an item value or a query; deeper input is a validation error."""


def _limit(what: str, actual: int, maximum: int, **extra: Any) -> LimitsError:
    return LimitsError(
        f"{what}: {actual} exceeds the limit of {maximum}",
        details={"limit": what, "max": maximum, "actual": actual, **extra},
    )


def check_request(ops: Sequence[Operation], meta: Meta, limits: Limits) -> None:
    """Raise `LimitsError` when the request as a whole asks too much."""
    _check_int(meta.client_time_ms, "meta.clientTimeMs")
    if limits.max_ops is not None and len(ops) > limits.max_ops:
        raise _limit("maxOps", len(ops), limits.max_ops)
    if limits.max_queries is not None:
        queries = sum(1 for op in ops if isinstance(op, QueryOp))
        if queries > limits.max_queries:
            raise _limit("maxQueries", queries, limits.max_queries)


def check_value(value: Any, limits: Limits, where: str) -> None:
    """Refuse values a storage engine or the other codec could not hold: nesting deeper
    than `max_depth`, integers wider than 64 bits, NaN and infinities (JSON parses `1e999`)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            if depth > limits.max_depth:
                raise ValidationError(
                    f"{where} is nested deeper than {limits.max_depth} levels",
                    code="TOO_DEEP",
                    details={"max": limits.max_depth},
                )
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, depth + 1) for child in children)
        elif isinstance(node, bool):
            continue
        elif isinstance(node, int):
            if not _INT_MIN <= node <= _INT_MAX:
                raise ValidationError(
                    f"{where} holds an integer wider than 64 bits", code="NUMBER_OUT_OF_RANGE"
                )
        elif isinstance(node, float) and not math.isfinite(node):
            raise ValidationError(f"{where} holds a non-finite number", code="NUMBER_OUT_OF_RANGE")


def _check_int(value: int | None, where: str) -> None:
    if value is not None and not _INT_MIN <= value < 2**63:
        raise ValidationError(f"{where} is out of the 64-bit range", code="NUMBER_OUT_OF_RANGE")


def _page_limit(query: dict[str, Any]) -> Any:
    page = query.get("page")
    return page.get("limit") if isinstance(page, dict) else None


def check_op(op: Operation, limits: Limits) -> None:
    """Raise `LimitsError`/`ValidationError` when this one op asks too much."""
    if isinstance(op, QueryOp):
        check_value(op.query.query, limits, "query")
        limit = _page_limit(op.query.query)
        if (
            limits.max_page_limit is not None
            and isinstance(limit, int | float)
            and not isinstance(limit, bool)
            and limit > limits.max_page_limit
        ):
            raise _limit("maxPageLimit", int(limit), limits.max_page_limit, opId=op.op_id)
    elif isinstance(op, ChangesPullOp):
        limit = op.pull.limit
        _check_int(limit, "pull.limit")
        if (
            limits.max_page_limit is not None
            and limit is not None
            and (limit > limits.max_page_limit)
        ):
            raise _limit("maxPageLimit", limit, limits.max_page_limit, opId=op.op_id)
    elif isinstance(op, WriteOp):
        entries = op.write.entries
        if limits.max_write_entries is not None and len(entries) > limits.max_write_entries:
            raise _limit("maxWriteEntries", len(entries), limits.max_write_entries, opId=op.op_id)
        for index, entry in enumerate(entries):
            item = entry.item
            for name in ("base_version", "expected_version"):
                _check_int(getattr(item, name, None), f"entries[{index}].item.{name}")
            _check_int(item.meta.client_time_ms, f"entries[{index}].item.meta.clientTimeMs")
            value = getattr(item, "value", None)
            if value is None:
                continue
            check_value(value, limits, f"entries[{index}].item.value")
            if limits.max_item_bytes is not None:
                size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
                if size > limits.max_item_bytes:
                    raise _limit(
                        "maxItemBytes", size, limits.max_item_bytes, opId=op.op_id, index=index
                    )
