"""Builders for protocol ops (pydantic models) used by the HTTP backend tests."""

from __future__ import annotations

import itertools
from typing import Any

from atoma_actors.protocol import (
    ChangesPullOp,
    ChangesPullSpec,
    CreateEntry,
    CreateItem,
    ItemMeta,
    Meta,
    QueryOp,
    QuerySpec,
    UpdateEntry,
    UpdateItem,
    WriteOp,
    WriteSpec,
)

_ids = itertools.count()


def key() -> str:
    return f"idem-{next(_ids)}"


def create_op(resource: str, id_: str, value: dict[str, Any], op_id: str = "w") -> WriteOp:
    item = CreateItem(id=id_, value=value, meta=ItemMeta(idempotency_key=key(), client_time_ms=1))
    return WriteOp(
        op_id=op_id, write=WriteSpec(resource=resource, entries=[CreateEntry(item=item)])
    )


def creates(resource: str, ids: list[str], op_id: str = "w") -> WriteOp:
    entries = [
        CreateEntry(
            item=CreateItem(
                id=i, value={"n": n}, meta=ItemMeta(idempotency_key=key(), client_time_ms=1)
            )
        )
        for n, i in enumerate(ids)
    ]
    return WriteOp(op_id=op_id, write=WriteSpec(resource=resource, entries=entries))


def update_op(
    resource: str, id_: str, base: int, value: dict[str, Any], op_id: str = "u"
) -> WriteOp:
    item = UpdateItem(
        id=id_,
        base_version=base,
        value=value,
        meta=ItemMeta(idempotency_key=key(), client_time_ms=1),
    )
    return WriteOp(
        op_id=op_id, write=WriteSpec(resource=resource, entries=[UpdateEntry(item=item)])
    )


def query_op(resource: str, query: dict[str, Any] | None = None, op_id: str = "q") -> QueryOp:
    return QueryOp(op_id=op_id, query=QuerySpec(resource=resource, query=query or {}))


def pull_op(cursor: str | None = None, op_id: str = "p", **kw: Any) -> ChangesPullOp:
    return ChangesPullOp(op_id=op_id, pull=ChangesPullSpec(cursor=cursor, **kw))


META = Meta()
