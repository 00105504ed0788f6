"""`SqlBackend`: the ops client over SQLite or PostgreSQL, its notify fan-out and lifecycle.

`execute_ops` runs each op on its own: a write op is one transaction, a query reads one
snapshot, a `changes.pull` reads the change log. A failing op becomes an error result for
that op only. Must not import atoma_actors.runtime or atoma_actors.client.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any, Literal

import pydantic
import sqlalchemy as sa

from atoma_actors.protocol.backend import Backend, Capabilities, Endpoint, OpsOutcome
from atoma_actors.protocol.codecs import validate_as
from atoma_actors.protocol.errors import (
    AdapterError,
    AtomaError,
    BackendUnavailable,
    InternalError,
    ValidationError,
)
from atoma_actors.protocol.listeners import Listeners
from atoma_actors.protocol.ops import (
    ChangesPullOp,
    Meta,
    Operation,
    QueryOp,
    WriteOp,
)
from atoma_actors.protocol.results import (
    NotifyMessage,
    OperationResult,
    OperationResultError,
    OperationResultOk,
)

from ._changes import run_pull
from ._limits import Limits
from ._query import IndexSpec, create_indexes, run_query
from ._schema import check_schema_name, create_engine, make_tables
from ._sqlquery import Compiler
from ._writes import run_write

__all__ = ["SqlBackend"]

log = logging.getLogger("atoma_actors.backends.sql")

_operation: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(Operation)
_PURGE_EVERY = 500  # write ops between sweeps of expired idempotency records

Persistence = Literal["ephemeral", "durable", "remote"]


class SqlBackend:
    """Stores resources in a database through SQLAlchemy Core.

    `url`: `sqlite:///path.db` (a durable local store; WAL), `sqlite://` (in memory) or
    `postgresql+psycopg://user@host/db` (tables in `schema` when given).
    `clock` returns wall-clock seconds (stamps for the change log and idempotency TTL).
    `persistence` is what `backend.capabilities.store_persistence` reports; by default
    "durable" for a SQLite file, "ephemeral" in memory, "remote" for PostgreSQL.
    `synchronous` (SQLite): FULL syncs the WAL at each commit so an acknowledged write survives
    power loss, not just a process crash (NORMAL); a write op is one commit, so it costs one
    fsync per op, not per entity.
    `indexes`: `{resource: [field, ...]}` expression indexes the query compiler can use.
    """

    def __init__(
        self,
        url: str | sa.URL,
        *,
        schema: str | None = None,
        key: str = "sql",
        idempotency_ttl_s: float = 24 * 3600,
        clock: Callable[[], float] = time.time,
        persistence: Persistence | None = None,
        synchronous: Literal["NORMAL", "FULL", "EXTRA"] = "FULL",
        limits: Limits | None = None,
        indexes: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self._engine, memory = create_engine(url, synchronous=synchronous)
        self.dialect = self._engine.dialect.name
        self._postgres = self.dialect == "postgresql"
        if schema is not None:
            if not self._postgres:
                raise ValueError("schema= is for PostgreSQL; a SQLite file is its own schema")
            check_schema_name(schema)
        self.schema = schema
        self.key = key
        self.limits = limits or Limits()
        self._ttl_ms = int(idempotency_ttl_s * 1000)
        self._clock = clock
        self._tables = make_tables(schema)
        self._compiler = Compiler(self._tables.rows, self.dialect)
        self._listeners: Listeners[NotifyMessage] = Listeners()
        self._lock = threading.Lock()
        # In memory, every thread shares ONE DB-API connection (StaticPool): transactions of
        # two threads would interleave on it (a reader's BEGIN failing inside a writer's
        # transaction, a commit ending another's work). One op at a time uses it.
        self._serial: AbstractContextManager[Any] = threading.RLock() if memory else nullcontext()
        self._closed = False
        self._writes = 0
        # How many queries SQL decided whole, and how many went to the Python engine.
        self.query_paths: Counter[str] = Counter()
        if persistence is None:
            persistence = "remote" if self._postgres else ("ephemeral" if memory else "durable")
        self._persistence: Persistence = persistence
        self._index_specs: list[IndexSpec] = []
        self._setup(indexes or {})

    # -- lifecycle -------------------------------------------------------------------------

    def _writer(self) -> sa.Connection:
        # atoma_write: the SQLite begin hook takes the write lock up front (BEGIN IMMEDIATE).
        return self._engine.connect().execution_options(atoma_write=True)

    def _setup(self, indexes: Mapping[str, Sequence[str]]) -> None:
        with self._writer() as conn:
            with conn.begin():
                if self.schema is not None:
                    conn.execute(sa.schema.CreateSchema(self.schema, if_not_exists=True))
                self._tables.metadata.create_all(conn, checkfirst=True)
            with conn.begin():
                self._index_specs = create_indexes(conn, self._tables, indexes, self._compiler)
        self._purge_expired()

    def close(self) -> None:
        """Release the connections. The data stays; a new backend on the same URL sees it."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._listeners.clear()
        self._engine.dispose()

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> SqlBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def engine(self) -> sa.Engine:
        return self._engine

    @property
    def backend(self) -> Backend:
        """This backend as the client sees it (store endpoint, notify, dispose)."""
        return Backend(
            self.key,
            store=Endpoint(self),
            capabilities=Capabilities(store_persistence=self._persistence),
            notify=self,
            dispose=self.close,
        )

    # -- notify ----------------------------------------------------------------------------

    def subscribe(self, callback: Callable[[NotifyMessage], None]) -> Callable[[], None]:
        """Call `callback` after each committed write op that changed rows (in-process)."""
        return self._listeners.subscribe(callback)

    def _notify(self, message: NotifyMessage) -> None:
        self._listeners.emit(message)

    # -- ops -------------------------------------------------------------------------------

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def execute_ops(
        self,
        ops: Sequence[Operation | Mapping[str, Any]],
        meta: Meta | Mapping[str, Any] | None = None,
        *,
        deadline: float | None = None,
        context: dict[str, Any] | None = None,
    ) -> OpsOutcome:
        """One result per op, in op order; status 200 (op failures travel inside)."""
        # A raw meta is outside input: a bad one is a typed ValidationError, not pydantic's.
        checked: Meta | None = validate_as(Meta, meta) if isinstance(meta, Mapping) else meta
        trace_id = checked.trace_id if checked is not None else None
        results: list[OperationResult] = []
        for raw in ops:
            results.append(self._one(raw, trace_id, deadline))
        return results, 200

    def _one(
        self, raw: Operation | Mapping[str, Any], trace_id: str | None, deadline: float | None
    ) -> OperationResult:
        op_id = str(raw.get("opId", "")) if isinstance(raw, Mapping) else raw.op_id
        try:
            op = _operation.validate_python(raw) if isinstance(raw, Mapping) else raw
            with self._serial:
                return self._run(op, op_id, trace_id, deadline)
        except AtomaError as exc:
            return OperationResultError(op_id=op_id, error=exc.error)
        except pydantic.ValidationError as exc:
            first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": str(exc)}
            where = ".".join(str(p) for p in first["loc"])
            invalid = ValidationError(f"invalid op at {where or 'root'}: {first['msg']}")
            return OperationResultError(op_id=op_id, error=invalid.error)
        except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
            # Locked, disconnected, server gone: the op may be retried (writes carry keys).
            log.warning("database unavailable: %s", exc)
            unavailable = BackendUnavailable(f"database unavailable: {exc.orig or exc}"[:500])
            return OperationResultError(op_id=op_id, error=unavailable.error)
        except sa.exc.DBAPIError as exc:
            log.exception("database error")
            failed = AdapterError(f"database error: {exc.orig or exc}"[:500])
            return OperationResultError(op_id=op_id, error=failed.error)
        except Exception as exc:
            log.exception("unexpected error in SQL backend")
            return OperationResultError(op_id=op_id, error=InternalError(repr(exc)[:500]).error)

    def _run(
        self, op: Operation, op_id: str, trace_id: str | None, deadline: float | None
    ) -> OperationResult:
        """Run one validated op; the caller turns exceptions into the op's error result."""
        if self._closed:
            raise BackendUnavailable(
                "the SQL backend is closed", code="BACKEND_CLOSED", retryable=False
            )
        if deadline is not None and time.monotonic() > deadline:
            raise BackendUnavailable("deadline passed before the op ran", code="DEADLINE_EXCEEDED")
        if isinstance(op, WriteOp):
            return OperationResultOk(op_id=op_id, data=self._write(op, trace_id))
        if isinstance(op, QueryOp):
            with self._engine.connect() as conn, conn.begin():
                data, path = run_query(
                    conn,
                    self._tables,
                    op.query,
                    comp=self._compiler,
                    limits=self.limits,
                    indexes=self._index_specs,
                )
            self.query_paths[path] += 1
            return OperationResultOk(op_id=op_id, data=data)
        if isinstance(op, ChangesPullOp):
            with self._engine.connect() as conn, conn.begin():
                batch = run_pull(conn, self._tables, op.pull, self.limits)
            return OperationResultOk(op_id=op_id, data=batch)
        raise ValidationError(f"unknown op kind {getattr(op, 'kind', None)!r}")

    def _write(self, op: WriteOp, trace_id: str | None) -> Any:
        now_ms = self._now_ms()
        with self._writer() as conn, conn.begin():
            outcome = run_write(
                conn,
                self._tables,
                op.write,
                now_ms=now_ms,
                ttl_ms=self._ttl_ms,
                limits=self.limits,
                postgres=self._postgres,
            )
        if outcome.changed:
            self._notify(NotifyMessage(resources=[op.write.resource], trace_id=trace_id))
        self._writes += 1
        if self._writes % _PURGE_EVERY == 0:
            self._purge_expired()
        return outcome.data

    def _purge_expired(self) -> None:
        idem = self._tables.idempotency
        with self._writer() as conn, conn.begin():
            conn.execute(idem.delete().where(idem.c.expires_at_ms <= self._now_ms()))

    def __repr__(self) -> str:
        url = self._engine.url.render_as_string(hide_password=True)
        return f"SqlBackend({url!r}, schema={self.schema!r})"
