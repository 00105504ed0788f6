"""One write op as one transaction: read the current rows, decide with the shared write rules,
then write rows, change-log entries and idempotency records in batches.

Every decision comes from `atoma_actors.core.writes.apply_entry`, exactly as in the memory
engine; this module only moves rows between the database and those rules. Decisions are all
made before the first write, so a failed item never needs a savepoint and never aborts the
others. Must not import atoma_actors.runtime or atoma_actors.client.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pydantic
import sqlalchemy as sa

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


class _Driver:
    """Bulk statements at the DB-API level: SQLAlchemy's per-row parameter processing costs
    several times the database's own work on 10k-row batches. Table names come from the
    dialect's identifier quoting of our own constants; every value is a bound parameter."""

    def __init__(self, conn: sa.Connection, t: Tables, postgres: bool) -> None:
        self.conn = conn
        self.postgres = postgres
        self.mark = "%s" if postgres else "?"
        quote = conn.dialect.identifier_preparer.format_table
        self.rows, self.changes, self.idem = quote(t.rows), quote(t.changes), quote(t.idempotency)
        self.json = "%s::jsonb" if postgres else "?"

    def marks(self, n: int) -> str:
        return ", ".join([self.mark] * n)

    def query(self, sql: str, params: Sequence[Any]) -> list[Any]:
        return list(self.conn.exec_driver_sql(sql, tuple(params)))

    def run(self, sql: str, params: Sequence[Any]) -> None:
        self.conn.exec_driver_sql(sql, tuple(params))

    def many(self, sql: str, params: list[tuple[Any, ...]]) -> None:
        if params:
            self.conn.exec_driver_sql(sql, params)


def _load_rows(db: _Driver, resource: str, ids: list[str]) -> dict[str, Row]:
    found: dict[str, Row] = {}
    lock = " FOR UPDATE" if db.postgres else ""
    for chunk in _chunks(ids):
        sql = (
            f"SELECT id, version, deleted, data FROM {db.rows} WHERE resource = {db.mark} "
            f"AND id IN ({db.marks(len(chunk))}){lock}"
        )
        for id_, version, deleted, data in db.query(sql, [resource, *chunk]):
            value = json.loads(data) if isinstance(data, str) else data
            found[id_] = Row(id=id_, version=version, value=value, deleted=bool(deleted))
    return found


def _load_idempotent(
    db: _Driver, resource: str, keys: list[str], now_ms: int
) -> dict[str, WriteItemResult]:
    stored: dict[str, WriteItemResult] = {}
    for chunk in _chunks(keys):
        sql = (
            f"SELECT key, result FROM {db.idem} WHERE resource = {db.mark} "
            f"AND key IN ({db.marks(len(chunk))}) AND expires_at_ms > {db.mark}"
        )
        for key, result in db.query(sql, [resource, *chunk, now_ms]):
            value = json.loads(result) if isinstance(result, str) else result
            stored[key] = _item_result.validate_python(value)
    return stored


def _result_json(result: WriteItemOk, text: str | None, full: bool) -> str:
    """The stored form of an ok item result, reusing the row's JSON when `data` is all of it."""
    head = f'{{"ok":true,"id":{dumps(result.id)},"version":{result.version}'
    if result.data is None:
        return head + "}"
    if full and text is not None:
        return f'{head},"data":{text}}}'
    return f'{head},"data":{dumps(result.data)}}}'


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
    db = _Driver(conn, t, postgres)
    if postgres:
        db.query(f"SELECT pg_advisory_xact_lock({db.mark})", [_ADVISORY_KEY])

    keys = list({e.item.meta.idempotency_key for e in spec.entries})
    stored = _load_idempotent(db, resource, keys, now_ms)
    ids = list({e.item.id for e in spec.entries if e.item.id is not None})
    in_db = _load_rows(db, resource, ids)
    current: dict[str, Row] = dict(in_db)

    results: list[WriteItemResult] = []
    final: dict[str, tuple[Row, str]] = {}  # id -> (row to store, its JSON text)
    changes: dict[str, tuple[Any, ...]] = {}  # id -> its latest change in this op
    fresh: dict[str, tuple[Any, ...]] = {}  # idempotency records to add
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
        changes[row.id] = (
            resource,
            row.id,
            "delete" if row.deleted else "upsert",
            row.version,
            now_ms,
        )
        stored[key] = result
        full = entry.options is None or (
            entry.options.select is None and entry.options.returning is not False
        )
        fresh[key] = (resource, key, _result_json(result, text, full), now_ms + ttl_ms)

    m = db.mark
    inserts, updates = [], []
    for id_, (row, text) in final.items():
        if id_ in in_db:
            updates.append((row.version, row.deleted, text, now_ms, resource, id_))
        else:
            inserts.append((resource, id_, row.version, row.deleted, text, now_ms, now_ms))
    db.many(
        f"INSERT INTO {db.rows} (resource, id, version, deleted, data, created_at_ms, "
        f"updated_at_ms) VALUES ({m}, {m}, {m}, {m}, {db.json}, {m}, {m})",
        inserts,
    )
    db.many(
        f"UPDATE {db.rows} SET version = {m}, deleted = {m}, data = {db.json}, "
        f"updated_at_ms = {m} WHERE resource = {m} AND id = {m}",
        updates,
    )
    if changes:
        # The log keeps the latest change per row (as the memory engine does): a puller needs
        # where each row is now, and the log stays bounded by the number of rows. A row new
        # to the table has no earlier entry (tombstones keep their rows), so only rows that
        # were there need the delete.
        old = [id_ for id_ in changes if id_ in in_db]
        for chunk in _chunks(old):
            db.run(
                f"DELETE FROM {db.changes} WHERE resource = {m} AND id IN ({db.marks(len(chunk))})",
                [resource, *chunk],
            )
        db.many(
            f"INSERT INTO {db.changes} (resource, id, kind, version, changed_at_ms) "
            f"VALUES ({m}, {m}, {m}, {m}, {m})",
            list(changes.values()),
        )
    # An expired record under a reused key is still there until the sweep: replace it.
    db.many(
        f"INSERT INTO {db.idem} (resource, key, result, expires_at_ms) "
        f"VALUES ({m}, {m}, {db.json}, {m}) ON CONFLICT (resource, key) DO UPDATE SET "
        "result = excluded.result, expires_at_ms = excluded.expires_at_ms",
        list(fresh.values()),
    )
    return WriteOutcome(WriteResultData(transaction_applied=True, results=results), bool(changes))
