"""Write planning: what one facade write (`EntrySpec`) becomes against what a store shows now.

Two pure planners share the same rules (conflict on creating an existing id, not found on
updating or deleting a missing one, patches merged over the current value):
- `plan_entry` turns a spec into a `PlannedEntry` for a backend (`wire_entry` makes it a
  protocol entry where it leaves the process) plus the optimistic `PendingChange` the store
  shows until the backend answers;
- `commit_entry` decides a spec at once, for a store that is its own backend (the embedded
  default): the new sealed entity with its next version, or None for a delete.
Must not import runtime, client or any backend.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

from pydantic import ValidationError as PydanticValidationError

from atoma_actors.protocol.errors import (
    ConflictError,
    CurrentValue,
    NotFoundError,
    ValidationError,
)
from atoma_actors.protocol.ops import (
    CreateEntry,
    CreateItem,
    DeleteEntry,
    DeleteItem,
    ItemMeta,
    UpdateEntry,
    UpdateItem,
    UpsertEntry,
    UpsertItem,
    UpsertOptions,
    WriteEntry,
    WriteOptions,
)

from .state import ChangeKey, PendingChange
from .values import check_entity, copy_json, fields_of, seal

__all__ = [
    "EntrySpec",
    "PlannedEntry",
    "Validate",
    "commit_entry",
    "fields_of",
    "plan_entry",
    "wire_entries",
    "wire_entry",
]

Entity = dict[str, Any]
Validate = Callable[[Entity], Any]
"""The store's model check of a whole entity (`id` and `version` included): returns it, or
raises `ValidationError`."""


@dataclass(frozen=True, slots=True)
class EntrySpec:
    """One write as the facade asked for it (before the store resolves versions). `value`
    is already checked and copied: the store may keep it."""

    action: Literal["create", "update", "upsert", "delete"]
    id: str
    value: Entity | None = None
    fn: Callable[[Entity], Entity] | None = None
    conflict: Literal["cas", "lww"] = "cas"
    apply: Literal["merge", "replace"] = "merge"


def _exists(store: str, id_: str, current: Entity) -> ConflictError:
    return ConflictError(
        f"{store}/{id_} already exists",
        current=CurrentValue(value=copy_json(current), version=current["version"]),
    )


def _missing(store: str, id_: str) -> NotFoundError:
    return NotFoundError(f"{store}/{id_} does not exist")


def _produced(spec: EntrySpec, current: Entity) -> Entity:
    """The new fields of an update: the callable's result, or the patch over `current`."""
    if spec.fn is not None:
        try:
            produced = spec.fn(copy_json(current))
        except Exception as exc:  # the user's callable: its failure is this entry's
            raise ValidationError(f"update function raised {exc!r}") from exc
        return fields_of(check_entity(produced, "update result"))
    return {**fields_of(current), **fields_of(spec.value)}


class PlannedEntry(NamedTuple):
    """A write entry as the store planned it: a trusted in-process form (one small tuple,
    no validation). It becomes a protocol entry (`wire_entry`) only where it leaves for a
    backend, so the thousands waiting in a queue cost little to build and to keep."""

    action: Literal["create", "update", "upsert", "delete"]
    id: str
    version: int | None
    """The base version (update, delete) or the expected version (upsert; None: none)."""
    value: Entity | None
    idempotency_key: str
    client_time_ms: int
    conflict: Literal["cas", "lww"] = "cas"
    apply: Literal["merge", "replace"] = "merge"


def wire_entry(entry: PlannedEntry) -> WriteEntry:
    """The protocol write entry of a planned one (validated here, at the boundary)."""
    meta = ItemMeta(idempotency_key=entry.idempotency_key, client_time_ms=entry.client_time_ms)
    action, id_ = entry.action, entry.id
    if action == "create":
        return CreateEntry(item=CreateItem(id=id_, value=entry.value or {}, meta=meta))
    if action == "update":
        version = entry.version or 0
        return UpdateEntry(
            item=UpdateItem(id=id_, base_version=version, value=entry.value or {}, meta=meta)
        )
    if action == "delete":
        return DeleteEntry(item=DeleteItem(id=id_, base_version=entry.version or 0, meta=meta))
    return UpsertEntry(
        item=UpsertItem(id=id_, expected_version=entry.version, value=entry.value or {}, meta=meta),
        options=WriteOptions(upsert=UpsertOptions(conflict=entry.conflict, apply=entry.apply)),
    )


def wire_entries(entries: Iterable[PlannedEntry]) -> list[WriteEntry]:
    """`wire_entry` of each, with a bad one refused as our `ValidationError` (never
    pydantic's), so whoever builds ops can fail that request alone and go on."""
    try:
        return [wire_entry(entry) for entry in entries]
    except PydanticValidationError as exc:
        raise ValidationError(f"write entry refused at the wire: {exc}") from None


def plan_entry(
    spec: EntrySpec,
    current: Entity | None,
    *,
    store: str,
    key: ChangeKey,
    idempotency_key: str,
    client_time_ms: int,
    validate: Validate | None = None,
) -> tuple[PlannedEntry, PendingChange]:
    """The entry to send and the optimistic change to show, for `spec` against the entity
    the store shows now (`current`, None when absent)."""
    id_ = spec.id
    idem, now = idempotency_key, client_time_ms
    if spec.action == "create":
        if current is not None:
            raise _exists(store, id_, current)
        value = fields_of(spec.value)
        if validate is not None:
            validate({**value, "id": id_, "version": 1})
        return (
            PlannedEntry("create", id_, None, value, idem, now),
            PendingChange(key, id_, "put", value),
        )
    if spec.action == "delete":
        if current is None:
            raise _missing(store, id_)
        return (
            PlannedEntry("delete", id_, current["version"], None, idem, now),
            PendingChange(key, id_, "delete"),
        )
    if spec.action == "update":
        if current is None:
            raise _missing(store, id_)
        value = _produced(spec, current)
        if validate is not None:
            validate({**value, "id": id_, "version": current["version"] + 1})
        if spec.fn is not None:
            change = PendingChange(key, id_, "put", value, needs_base=True)
        else:
            change = PendingChange(key, id_, "merge", fields_of(spec.value), needs_base=True)
        return PlannedEntry("update", id_, current["version"], value, idem, now), change
    # upsert
    fields = fields_of(spec.value)
    if validate is not None:
        version = current["version"] + 1 if current is not None else 1
        if spec.apply == "merge" and current is not None:
            validate({**current, **fields, "version": version})
        else:
            validate({**fields, "id": id_, "version": version})
    expected = current["version"] if (current is not None and spec.conflict == "cas") else None
    return (
        PlannedEntry("upsert", id_, expected, fields, idem, now, spec.conflict, spec.apply),
        PendingChange(key, id_, "merge" if spec.apply == "merge" else "put", fields),
    )


def _entity(id_: str, version: int, owned: Entity) -> Entity:
    """`owned` (a dict nobody else holds: the spec's own copy, or one just built) as the
    entity at `id_` and `version`."""
    owned["id"] = id_
    owned["version"] = version
    return seal(owned)


def commit_entry(
    spec: EntrySpec,
    current: Entity | None,
    tomb_version: int,
    *,
    store: str,
    validate: Validate | None = None,
) -> Entity | None:
    """The entity `spec` leaves behind in a store that is its own backend (None: deleted).

    Versions follow the write rules of every backend: a create starts one past the tombstone
    (`tomb_version`, 0 if never deleted), an update, upsert or delete moves one past `current`.
    The spec's value may become the stored entity (the facade handed over its own copy).
    """
    id_ = spec.id
    action = spec.action
    if action == "create":
        if current is not None:
            raise _exists(store, id_, current)
        entity = _entity(id_, tomb_version + 1, spec.value or {})
    elif current is None:
        if action != "upsert":
            raise _missing(store, id_)
        entity = _entity(id_, tomb_version + 1, spec.value or {})
    elif action == "delete":
        return None
    elif action == "update" and spec.fn is not None:
        entity = _entity(id_, current["version"] + 1, _produced(spec, current))
    elif action == "update" or spec.apply == "merge":
        entity = _entity(id_, current["version"] + 1, {**current, **fields_of(spec.value)})
    else:
        entity = _entity(id_, current["version"] + 1, spec.value or {})
    if validate is not None:
        validate(entity)
    return entity
