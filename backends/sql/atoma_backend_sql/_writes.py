"""One write op as one transaction: read the current rows, decide with the shared write rules,
then write rows, change-log entries and idempotency records in batches.

Every decision comes from `atoma_actors.core.writes.apply_entry`, exactly as in the memory
engine; this module only moves rows between the database and those rules. Decisions are all
made before the first write, so a failed item never needs a savepoint and never aborts the
others. Must not import atoma_actors.runtime or atoma_actors.client.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pydantic
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from atoma_actors.core.writes import Row, apply_entry
from atoma_actors.protocol.errors import LimitsError
from atoma_actors.protocol.ops import DeleteEntry, WriteSpec
from atoma_actors.protocol.results import (
    WriteItemOk,
    WriteItemResult,
    WriteResultData,
)

from ._limits import Limits, check_id, check_resource, encode_value
from ._schema import Tables, dumps

__all__ = ["WriteOutcome", "run_write"]

_CHUNK = 2000  # ids per IN (...) list: far below SQLite's bound-variable limit
_ADVISORY_KEY = 0x61746F6D61  # "atoma": one lock serialises writers so `seq` commits in order

_item_result: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(WriteItemResult)


@dataclass(frozen=True, slots=True)
class WriteOutcome:
    data: WriteResultData
    changed: bool


def _chunks(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _precheck(spec: WriteSpec, limits: Limits) -> None:
    check_resource(spec.resource)
    if len(spec.entries) > limits.max_entries:
        raise LimitsError(
            f"{len(spec.entries)} entries exceed the limit of {limits.max_entries} per write op",
            code="TOO_MANY_ENTRIES",
        )
    for entry in spec.entries:
        if entry.item.id is not None:
            check_id(entry.item.id, limits)


def _load_rows(
    conn: sa.Connection, t: Tables, resource: str, ids: list[str], postgres: bool
) -> dict[str, Row]:
    rows = t.rows
    found: dict[str, Row] = {}
    for chunk in _chunks(ids):
        stmt = sa.select(rows.c.id, rows.c.version, rows.c.deleted, rows.c.data).where(
            rows.c.resource == resource, rows.c.id.in_(chunk)
        )
        if postgres:
            stmt = stmt.with_for_update()
        for id_, version, deleted, data in conn.execute(stmt):
            found[id_] = Row(id=id_, version=version, value=data, deleted=bool(deleted))
    return found


def _load_idempotent(
    conn: sa.Connection, t: Tables, resource: str, keys: list[str], now_ms: int
) -> dict[str, WriteItemResult]:
    idem = t.idempotency
    stored: dict[str, WriteItemResult] = {}
    for chunk in _chunks(keys):
        stmt = sa.select(idem.c.key, idem.c.result).where(
            idem.c.resource == resource, idem.c.key.in_(chunk), idem.c.expires_at_ms > now_ms
        )
        for key, result in conn.execute(stmt):
            stored[key] = _item_result.validate_python(result)
    return stored


def run_write(
    conn: sa.Connection,
    t: Tables,
    spec: WriteSpec,
    *,
    now_ms: int,
    ttl_ms: int,
    limits: Limits,
    postgres: bool,
    new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
) -> WriteOutcome:
    """Apply `spec` inside the open transaction of `conn` and return its item results.

    Raises `ValidationError`/`LimitsError` (before any write) for input that must not be
    stored at all: a bad resource name, an id too long, a value that is not plain JSON or too big.
    """
    _precheck(spec, limits)
    resource = spec.resource
    if postgres:
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_ADVISORY_KEY)))

    keys = list({e.item.meta.idempotency_key for e in spec.entries})
    stored = _load_idempotent(conn, t, resource, keys, now_ms)
    ids = list({e.item.id for e in spec.entries if e.item.id is not None})
    in_db = _load_rows(conn, t, resource, ids, postgres)
    current: dict[str, Row] = dict(in_db)

    results: list[WriteItemResult] = []
    final: dict[str, tuple[Row, str]] = {}  # id -> (row to store, its JSON text)
    changes: dict[str, dict[str, Any]] = {}  # id -> its latest change in this op
    fresh: dict[str, WriteItemResult] = {}  # idempotency records to add
    for entry in spec.entries:
        key = entry.item.meta.idempotency_key
        if key in stored:
            results.append(stored[key])
            continue
        decision = apply_entry(
            entry,
            current.get(entry.item.id) if entry.item.id is not None else None,
            resource=resource,
            new_id=None if entry.item.id is not None else new_id(),
        )
        if not isinstance(entry, DeleteEntry):
            # Every value is checked, also of an entry the rules refused: bad input is refused
            # whole, whatever the state of the rows.
            text = encode_value(
                decision.row.value if decision.row is not None else entry.item.value,
                limits,
                refuse_nul=postgres,
            )
        else:
            text = None
        result = decision.result
        results.append(result)
        row = decision.row
        if row is None or not isinstance(result, WriteItemOk):
            continue
        check_id(row.id, limits)
        current[row.id] = row
        final[row.id] = (row, text if text is not None else dumps(row.value))
        changes[row.id] = {
            "resource": resource,
            "id": row.id,
            "kind": "delete" if row.deleted else "upsert",
            "version": row.version,
            "changed_at_ms": now_ms,
        }
        stored[key] = result
        fresh[key] = result

    _write_rows(conn, t, resource, final=final, in_db=in_db, now_ms=now_ms)
    if changes:
        # The log keeps the latest change per row (as the memory engine does): a puller
        # needs where each row is now, and the log stays bounded by the number of rows.
        ids_changed = list(changes)
        for chunk in _chunks(ids_changed):
            conn.execute(
                t.changes.delete().where(
                    t.changes.c.resource == resource, t.changes.c.id.in_(chunk)
                )
            )
        conn.execute(t.changes.insert(), list(changes.values()))
    if fresh:
        conn.execute(
            _idem_insert(t, postgres),
            [
                {
                    "resource": resource,
                    "key": key,
                    "result": dumps(res.model_dump(by_alias=True, exclude_none=True, mode="json")),
                    "expires_at_ms": now_ms + ttl_ms,
                }
                for key, res in fresh.items()
            ],
        )
    return WriteOutcome(WriteResultData(transaction_applied=True, results=results), bool(changes))


def _idem_insert(t: Tables, postgres: bool) -> Any:
    # An expired record under a reused key is still there until the sweep: replace it.
    idem = t.idempotency
    stmt = (pg_insert if postgres else sqlite_insert)(idem)
    return stmt.on_conflict_do_update(
        index_elements=[idem.c.resource, idem.c.key],
        set_={"result": stmt.excluded.result, "expires_at_ms": stmt.excluded.expires_at_ms},
    )


def _write_rows(
    conn: sa.Connection,
    t: Tables,
    resource: str,
    *,
    final: dict[str, tuple[Row, str]],
    in_db: dict[str, Row],
    now_ms: int,
) -> None:
    rows = t.rows
    inserts = []
    updates = []
    for id_, (row, text) in final.items():
        if id_ in in_db:
            updates.append(
                {
                    "b_id": id_,
                    "b_version": row.version,
                    "b_deleted": row.deleted,
                    "b_data": text,
                    "b_updated": now_ms,
                }
            )
        else:
            inserts.append(
                {
                    "resource": resource,
                    "id": id_,
                    "version": row.version,
                    "deleted": row.deleted,
                    "data": text,
                    "created_at_ms": now_ms,
                    "updated_at_ms": now_ms,
                }
            )
    if inserts:
        conn.execute(rows.insert(), inserts)
    if updates:
        stmt = (
            rows.update()
            .where(rows.c.resource == resource, rows.c.id == sa.bindparam("b_id"))
            .values(
                version=sa.bindparam("b_version"),
                deleted=sa.bindparam("b_deleted"),
                data=sa.bindparam("b_data", type_=rows.c.data.type),
                updated_at_ms=sa.bindparam("b_updated"),
            )
        )
        conn.execute(stmt, updates)
