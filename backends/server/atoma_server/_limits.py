"""Request limits of the ops server and the checks that enforce them.

Request-shaped limits (body bytes, ops and queries per request) reject the whole request;
op-shaped limits (page size, entries per write, item payload bytes, nesting depth) fail only
the op that breaks them, so one bad op never sinks the others. Every check raises a typed
error from `atoma_actors.protocol.errors`. Imports only `atoma_actors.protocol`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from atoma_actors.protocol.errors import LimitsError, ValidationError
from atoma_actors.protocol.ops import ChangesPullOp, Meta, Operation, QueryOp, WriteOp

__all__ = ["Limits", "check_op", "check_request", "check_text", "check_value"]

_INT_MIN = -(2**63)
_INT_MAX = 2**64 - 1  # the widest integer msgpack can carry back to a client
# A JSON escape of a UTF-16 surrogate: only a body holding one can decode to a lone surrogate.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
# What storages page by when a request names no size (core.paging's cursor default and
# core.storage's pull default); the server cannot import them.
_CURSOR_DEFAULT_LIMIT = 50
_PULL_DEFAULT_LIMIT = 100


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


def check_text(body: bytes, value: Any) -> None:
    """Refuse a JSON body whose strings cannot be encoded back (a lone surrogate escape such
    as `"\\ud800"` is valid JSON syntax but no Unicode text): no storage could store it
    and no answer could carry it. Valid surrogate pairs decode to one character and pass."""
    if not _SURROGATE_ESCAPE.search(body):
        return
    try:
        # C speed: the encoder keeps lone surrogates and UTF-8 refuses them.
        json.dumps(value, ensure_ascii=False).encode()
    except UnicodeEncodeError as exc:
        raise ValidationError(
            "the body holds a lone UTF-16 surrogate escape (not valid Unicode text)",
            code="INVALID_BODY",
        ) from exc


def check_value(value: Any, limits: Limits, where: str) -> None:
    """Refuse values a storage engine or the other codec could not hold: nesting deeper
    than `max_depth`, integers wider than 64 bits, NaN and infinities (JSON parses `1e999`),
    and leaves or keys that are not JSON (msgpack's bin and ext types, non-string keys)."""
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
            if isinstance(node, dict):
                if not all(type(k) is str for k in node):
                    raise ValidationError(
                        f"{where} holds an object key that is not a string", code="INVALID_VALUE"
                    )
                stack.extend((child, depth + 1) for child in node.values())
            else:
                stack.extend((child, depth + 1) for child in node)
        elif node is None or isinstance(node, str | bool):
            continue
        elif isinstance(node, int):
            if not _INT_MIN <= node <= _INT_MAX:
                raise ValidationError(
                    f"{where} holds an integer wider than 64 bits", code="NUMBER_OUT_OF_RANGE"
                )
        elif isinstance(node, float):
            if not math.isfinite(node):
                raise ValidationError(
                    f"{where} holds a non-finite number", code="NUMBER_OUT_OF_RANGE"
                )
        else:
            raise ValidationError(
                f"{where} holds a {type(node).__name__}, not a JSON value", code="INVALID_VALUE"
            )


def _check_int(value: int | None, where: str) -> None:
    if value is not None and not _INT_MIN <= value < 2**63:
        raise ValidationError(f"{where} is out of the 64-bit range", code="NUMBER_OUT_OF_RANGE")


def _page_limit(query: dict[str, Any]) -> Any:
    page = query.get("page")
    return page.get("limit") if isinstance(page, dict) else None


def _capped_query(op: QueryOp, maximum: int) -> QueryOp:
    """`op` with a page limit when it names none, so leaving the limit out cannot read a
    whole resource: an offset page (or no page) gets `maximum`, a cursor page the smaller
    of its usual default and `maximum`."""
    query = op.query.query
    page = query.get("page")
    if page is None:
        page = {"mode": "offset"}
    if not isinstance(page, dict) or page.get("limit") is not None:
        return op  # a malformed page is the storage's validation error to give
    cursor = page.get("mode") == "cursor" or (
        "mode" not in page and ("after" in page or "before" in page)
    )
    if cursor and maximum >= _CURSOR_DEFAULT_LIMIT:
        return op
    spec = op.query.model_copy(update={"query": {**query, "page": {**page, "limit": maximum}}})
    return op.model_copy(update={"query": spec})


def check_op(op: Operation, limits: Limits) -> Operation:
    """The op to run (page limits filled in under `max_page_limit`); raise
    `LimitsError`/`ValidationError` when this one op asks too much."""
    if isinstance(op, QueryOp):
        check_value(op.query.query, limits, "query")
        if limits.max_page_limit is not None:
            op = _capped_query(op, limits.max_page_limit)
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
        cap = limits.max_page_limit
        if limit is None and cap is not None and cap < _PULL_DEFAULT_LIMIT:
            op = op.model_copy(update={"pull": op.pull.model_copy(update={"limit": cap})})
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
    return op
