"""Results on the wire: op results, query/write/changes data, and the response envelope.

Must not import anything from atoma_actors outside `protocol`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from ._base import LenientModel, WireModel
from .errors import CurrentValue, StandardError

__all__ = [
    "Change",
    "ChangeBatch",
    "NotifyMessage",
    "OperationResult",
    "OperationResultError",
    "OperationResultOk",
    "OpsResponse",
    "OpsResponseError",
    "OpsResponseOk",
    "OpsResultsData",
    "PageInfo",
    "QueryResultData",
    "ResponseMeta",
    "WriteItemError",
    "WriteItemOk",
    "WriteItemResult",
    "WriteResultData",
]


class PageInfo(WireModel):
    has_next: bool
    total: int | None = None
    cursor: str | None = None
    has_prev: bool | None = None


class QueryResultData(WireModel):
    data: list[dict[str, Any]]
    page_info: PageInfo | None = None


class WriteItemOk(WireModel):
    ok: Literal[True] = True
    id: str
    version: int
    data: dict[str, Any] | None = None


class WriteItemError(WireModel):
    ok: Literal[False] = False
    error: StandardError
    current: CurrentValue | None = None


WriteItemResult = Annotated[WriteItemOk | WriteItemError, Field(discriminator="ok")]


class WriteResultData(WireModel):
    """Exactly one item result per entry, in entry order."""

    transaction_applied: bool | None = None
    results: list[WriteItemResult]


class Change(WireModel):
    resource: str
    id: str
    kind: Literal["upsert", "delete"]
    version: int
    changed_at_ms: int


class ChangeBatch(WireModel):
    next_cursor: str
    changes: list[Change]


class OperationResultOk(WireModel):
    op_id: str
    ok: Literal[True] = True
    data: QueryResultData | WriteResultData | ChangeBatch


class OperationResultError(WireModel):
    op_id: str
    ok: Literal[False] = False
    error: StandardError


OperationResult = Annotated[OperationResultOk | OperationResultError, Field(discriminator="ok")]


class ResponseMeta(LenientModel):
    v: Literal[1] = 1
    server_time_ms: int | None = None


class OpsResultsData(WireModel):
    results: list[OperationResult]


class OpsResponseOk(WireModel):
    ok: Literal[True] = True
    data: OpsResultsData
    meta: ResponseMeta = Field(default_factory=ResponseMeta)


class OpsResponseError(WireModel):
    ok: Literal[False] = False
    error: StandardError
    meta: ResponseMeta = Field(default_factory=ResponseMeta)


OpsResponse = Annotated[OpsResponseOk | OpsResponseError, Field(discriminator="ok")]


class NotifyMessage(WireModel):
    resources: list[str] | None = None
    trace_id: str | None = None
