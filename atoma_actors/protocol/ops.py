"""Requests on the wire: `Meta`, the three op kinds and the write entries they carry.

`{meta, ops}` where an op is a query, a write or a `changes.pull` (our extension).
Must not import anything from atoma_actors outside `protocol`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from ._base import LenientModel, WireModel

__all__ = [
    "ChangesPullOp",
    "ChangesPullSpec",
    "CreateEntry",
    "CreateItem",
    "DeleteEntry",
    "DeleteItem",
    "ItemMeta",
    "Meta",
    "Operation",
    "OpsRequest",
    "QueryOp",
    "QuerySpec",
    "UpdateEntry",
    "UpdateItem",
    "UpsertEntry",
    "UpsertItem",
    "UpsertOptions",
    "WriteEntry",
    "WriteOp",
    "WriteOptions",
    "WriteSpec",
]

PROTOCOL_VERSION: Literal[1] = 1


class Meta(LenientModel):
    """Request meta: `{v: 1, traceId?, requestId?, deviceId?, clientTimeMs?}`."""

    v: Literal[1] = PROTOCOL_VERSION
    trace_id: str | None = None
    request_id: str | None = None
    device_id: str | None = None
    client_time_ms: int | None = None


class ItemMeta(WireModel):
    """Per-item meta; both fields are required on the wire (the client fills them)."""

    idempotency_key: str = Field(min_length=1, max_length=200)
    client_time_ms: int


class UpsertOptions(WireModel):
    conflict: Literal["cas", "lww"] = "cas"
    apply: Literal["merge", "replace"] = "merge"


class WriteOptions(WireModel):
    returning: bool | None = None
    select: list[str] | None = None
    upsert: UpsertOptions | None = None


Value = dict[str, Any]


class CreateItem(WireModel):
    id: str | None = Field(default=None, min_length=1)
    value: Value
    meta: ItemMeta


class UpdateItem(WireModel):
    id: str = Field(min_length=1)
    base_version: int = Field(ge=0)
    value: Value
    meta: ItemMeta


class UpsertItem(WireModel):
    id: str = Field(min_length=1)
    expected_version: int | None = Field(default=None, ge=0)
    value: Value
    meta: ItemMeta


class DeleteItem(WireModel):
    id: str = Field(min_length=1)
    base_version: int = Field(ge=0)
    meta: ItemMeta


class CreateEntry(WireModel):
    action: Literal["create"] = "create"
    item: CreateItem
    options: WriteOptions | None = None


class UpdateEntry(WireModel):
    action: Literal["update"] = "update"
    item: UpdateItem
    options: WriteOptions | None = None


class UpsertEntry(WireModel):
    action: Literal["upsert"] = "upsert"
    item: UpsertItem
    options: WriteOptions | None = None


class DeleteEntry(WireModel):
    action: Literal["delete"] = "delete"
    item: DeleteItem
    options: WriteOptions | None = None


WriteEntry = Annotated[
    CreateEntry | UpdateEntry | UpsertEntry | DeleteEntry, Field(discriminator="action")
]


class QuerySpec(WireModel):
    """`{resource, query}`; the query itself is checked by the query engine, not here."""

    resource: str = Field(min_length=1)
    query: dict[str, Any] = Field(default_factory=dict)


class WriteSpec(WireModel):
    resource: str = Field(min_length=1)
    entries: list[WriteEntry]


class ChangesPullSpec(WireModel):
    cursor: str | None = None
    limit: int | None = Field(default=None, ge=1)
    resources: list[str] | None = None


class QueryOp(WireModel):
    op_id: str = Field(min_length=1)
    kind: Literal["query"] = "query"
    query: QuerySpec


class WriteOp(WireModel):
    op_id: str = Field(min_length=1)
    kind: Literal["write"] = "write"
    write: WriteSpec


class ChangesPullOp(WireModel):
    op_id: str = Field(min_length=1)
    kind: Literal["changes.pull"] = "changes.pull"
    pull: ChangesPullSpec


Operation = Annotated[QueryOp | WriteOp | ChangesPullOp, Field(discriminator="kind")]


class OpsRequest(WireModel):
    """The body of `POST /ops`. Op ids must be unique within one request."""

    meta: Meta
    ops: list[Operation]

    @model_validator(mode="after")
    def _unique_op_ids(self) -> OpsRequest:
        seen: set[str] = set()
        for op in self.ops:
            if op.op_id in seen:
                raise ValueError(f"duplicate opId {op.op_id!r}")
            seen.add(op.op_id)
        return self
