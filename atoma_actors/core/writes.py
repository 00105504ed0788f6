"""The rules of a write: what one entry does to one row, shared by every storage engine.

`apply_entry(entry, current)` decides, without I/O, the new row (or tombstone) and the item
result for a create / update / upsert / delete against the row that is there now. The memory
engine, the SQL backend and the local engine all call it, so versions, CAS and conflict details
are the same everywhere. Must not import runtime, client or any backend.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from atoma_actors.protocol.errors import ConflictDetails, CurrentValue, StandardError
from atoma_actors.protocol.ops import (
    CreateEntry,
    DeleteEntry,
    UpdateEntry,
    UpsertEntry,
    WriteEntry,
    WriteOptions,
)
from atoma_actors.protocol.results import WriteItemError, WriteItemOk

from .values import fields_of

__all__ = ["Row", "WriteDecision", "apply_entry", "select_fields"]


@dataclass(frozen=True, slots=True)
class Row:
    """A stored row. `value` is the whole entity, `id` and `version` keys included.
    A deleted row stays as a tombstone so versions keep growing across delete and re-create."""

    id: str
    version: int
    value: dict[str, Any]
    deleted: bool = False

    @property
    def live(self) -> bool:
        return not self.deleted


@dataclass(frozen=True, slots=True)
class WriteDecision:
    """`row` is what to store (None: store nothing); `result` is the item result to return."""

    row: Row | None
    result: WriteItemOk | WriteItemError

    @property
    def ok(self) -> bool:
        return self.result.ok


def select_fields(value: dict[str, Any], options: WriteOptions | None) -> dict[str, Any] | None:
    """The `data` of an ok item result: the stored value, trimmed by `select`, or None
    when the writer asked for `returning: false`."""
    if options is not None and options.returning is False:
        return None
    if options is not None and options.select:
        keep = set(options.select) | {"id", "version"}
        return {k: v for k, v in value.items() if k in keep}
    return dict(value)


def _error(kind: str, code: str, message: str, **details: Any) -> StandardError:
    return StandardError(
        code=code,
        message=message,
        kind=kind,  # type: ignore[arg-type]
        retryable=False,
        details={k: v for k, v in details.items() if v is not None} or None,
    )


def _conflict(
    resource: str,
    current: Row,
    message: str,
    hint: Literal["rebase", "server-wins", "manual"] = "rebase",
) -> WriteItemError:
    details = ConflictDetails(
        resource=resource, id=current.id, current_version=current.version, hint=hint
    )
    return WriteItemError(
        error=StandardError(
            code="CONFLICT",
            message=message,
            kind="conflict",
            retryable=False,
            details=details.model_dump(by_alias=True, exclude_none=True),
        ),
        current=CurrentValue(value=dict(current.value), version=current.version),
    )


def _stale(resource: str, live: Row, expected: int | None) -> WriteDecision | None:
    """The conflict decision when `expected` is not the live row's version, else None."""
    if expected == live.version:
        return None
    if expected is None:
        message = f"{resource}/{live.id} exists; a cas upsert needs expectedVersion"
    else:
        message = f"{resource}/{live.id} is at version {live.version}, not {expected}"
    return WriteDecision(None, _conflict(resource, live, message))


def _not_found(resource: str, id_: str) -> WriteItemError:
    return WriteItemError(
        error=_error(
            "not_found", "NOT_FOUND", f"{resource}/{id_} does not exist", resource=resource, id=id_
        )
    )


def _stored(
    id_: str, version: int, value: dict[str, Any], options: WriteOptions | None
) -> WriteDecision:
    entity = {**value, "id": id_, "version": version}
    row = Row(id=id_, version=version, value=entity)
    return WriteDecision(
        row, WriteItemOk(id=id_, version=version, data=select_fields(entity, options))
    )


def _next_version(current: Row | None) -> int:
    return 1 if current is None else current.version + 1


def apply_entry(
    entry: WriteEntry,
    current: Row | None,
    *,
    resource: str,
    new_id: str | None = None,
) -> WriteDecision:
    """Decide what `entry` does to `current` (None or a tombstone when nothing lives there).

    `new_id` is used for a create without an id. Versions: a create starts at 1 (or one past a
    tombstone), an update/delete sets `baseVersion + 1`, an upsert sets current + 1.
    """
    live = current if current is not None and current.live else None
    if isinstance(entry, CreateEntry):
        id_ = entry.item.id or new_id
        if id_ is None:
            raise ValueError("a create without an id needs new_id")
        if live is not None:
            return WriteDecision(
                None,
                _conflict(resource, live, f"{resource}/{id_} already exists", hint="server-wins"),
            )
        return _stored(id_, _next_version(current), entry.item.value, entry.options)

    if isinstance(entry, UpdateEntry):
        return _update(entry, live, resource)
    if isinstance(entry, UpsertEntry):
        return _upsert(entry, current, live, resource)
    if isinstance(entry, DeleteEntry):
        return _delete(entry, live, resource)
    raise TypeError(f"not a write entry: {entry!r}")


def _update(entry: UpdateEntry, live: Row | None, resource: str) -> WriteDecision:
    item = entry.item
    if live is None:
        return WriteDecision(None, _not_found(resource, item.id))
    stale = _stale(resource, live, item.base_version)
    if stale is not None:
        return stale
    return _stored(item.id, item.base_version + 1, item.value, entry.options)


def _upsert(
    entry: UpsertEntry, current: Row | None, live: Row | None, resource: str
) -> WriteDecision:
    item = entry.item
    mode = entry.options.upsert if entry.options and entry.options.upsert else None
    conflict = mode.conflict if mode else "cas"
    apply = mode.apply if mode else "merge"
    if live is None:
        if conflict == "cas" and item.expected_version not in (None, 0):
            return WriteDecision(None, _not_found(resource, item.id))
        return _stored(item.id, _next_version(current), item.value, entry.options)
    if conflict == "cas" and (stale := _stale(resource, live, item.expected_version)):
        return stale
    value = {**fields_of(live.value), **item.value} if apply == "merge" else item.value
    return _stored(item.id, live.version + 1, value, entry.options)


def _delete(entry: DeleteEntry, live: Row | None, resource: str) -> WriteDecision:
    item = entry.item
    if live is None:
        return WriteDecision(None, _not_found(resource, item.id))
    stale = _stale(resource, live, item.base_version)
    if stale is not None:
        return stale
    version = item.base_version + 1
    tomb = Row(id=item.id, version=version, value={"id": item.id, "version": version}, deleted=True)
    return WriteDecision(tomb, WriteItemOk(id=item.id, version=version))
