"""The tables the SQL backend manages and the engine that reaches them.

One shared `atoma_rows` table keyed by `(resource, id)` holds every resource (see
docs/sql-backend.md for why), next to the change log (`atoma_changes`, a monotonic `seq`) and
the idempotency table (`atoma_idempotency`, results kept until `expires_at_ms`).
Must not import atoma_actors.runtime or atoma_actors.client.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Engine
from sqlalchemy.pool import StaticPool

__all__ = [
    "Dialect",
    "Tables",
    "create_engine",
    "dumps",
    "make_tables",
]

Dialect = Literal["sqlite", "postgresql"]

# Ids order by code point in both databases: BINARY is SQLite's default, "C" PostgreSQL's.
_ID = sa.String(512).with_variant(sa.String(512, collation="C"), "postgresql")
_SCHEMA_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


# One encoder for every call: `json.dumps` with options builds a new one each time.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def dumps(value: Any) -> str:
    """The one JSON encoding of stored values: compact, no NaN/Infinity (not JSON)."""
    return _ENCODER.encode(value)


class JsonDoc(sa.types.TypeDecorator[Any]):
    """A JSON document column: TEXT on SQLite (json1 functions read it), JSONB on PostgreSQL.

    Binds take the already encoded string, so a value is serialised once (the size check
    needs the encoding anyway); results come back as Python values.
    """

    impl = sa.Text
    cache_ok = True

    def load_dialect_impl(self, dialect: sa.Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(JSONB())
        return dialect.type_descriptor(sa.Text())

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> Any:
        if isinstance(value, str) and dialect.name != "postgresql":
            return json.loads(value)
        return value


@dataclass(frozen=True, slots=True)
class Tables:
    metadata: sa.MetaData
    rows: sa.Table
    changes: sa.Table
    idempotency: sa.Table


def make_tables(schema: str | None) -> Tables:
    """The backend's tables, in `schema` (PostgreSQL) or the default one."""
    md = sa.MetaData(schema=schema)
    rows = sa.Table(
        "atoma_rows",
        md,
        sa.Column("resource", sa.String(64), primary_key=True),
        sa.Column("id", _ID, primary_key=True),
        sa.Column("version", sa.BigInteger, nullable=False),
        # A tombstone keeps the row (and its version) so a re-create continues from it.
        sa.Column("deleted", sa.Boolean, nullable=False, default=False),
        sa.Column("data", JsonDoc, nullable=False),
        sa.Column("created_at_ms", sa.BigInteger, nullable=False),
        sa.Column("updated_at_ms", sa.BigInteger, nullable=False),
    )
    changes = sa.Table(
        "atoma_changes",
        md,
        # SQLite: INTEGER PRIMARY KEY AUTOINCREMENT never reuses a value; PostgreSQL: identity.
        sa.Column(
            "seq",
            sa.Integer().with_variant(sa.BigInteger, "postgresql"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("resource", sa.String(64), nullable=False),
        sa.Column("id", _ID, nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.Column("changed_at_ms", sa.BigInteger, nullable=False),
        sa.Index("ix_atoma_changes_row", "resource", "id"),
        sqlite_autoincrement=True,
    )
    idempotency = sa.Table(
        "atoma_idempotency",
        md,
        sa.Column("resource", sa.String(64), primary_key=True),
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("result", JsonDoc, nullable=False),
        sa.Column("expires_at_ms", sa.BigInteger, nullable=False, index=True),
    )
    return Tables(md, rows, changes, idempotency)


def check_schema_name(schema: str) -> str:
    if not _SCHEMA_RE.match(schema):
        raise ValueError(f"schema name must match {_SCHEMA_RE.pattern}: {schema!r}")
    return schema


def _encoded(value: Any) -> str:
    # JSONB binds receive the string `dumps` already made; encoding it again would nest it.
    return value if isinstance(value, str) else dumps(value)


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _sqlite_pragmas(synchronous: str) -> Any:
    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        # The driver must not open transactions by itself: `begin` below does, so a write
        # takes the write lock up front (BEGIN IMMEDIATE) instead of failing to upgrade later.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA synchronous={synchronous}")
        cur.execute("PRAGMA busy_timeout=10000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA temp_store=MEMORY")
        cur.close()
        # Python's own lower-casing, so compiled startsWith/endsWith/contains match the engine.
        dbapi_conn.create_function("atoma_lower", 1, _lower, deterministic=True)

    return on_connect


def _sqlite_begin(conn: sa.Connection) -> None:
    mode = "IMMEDIATE" if conn.get_execution_options().get("atoma_write") else "DEFERRED"
    conn.exec_driver_sql(f"BEGIN {mode}")


def create_engine(url: str | sa.URL, *, synchronous: str = "FULL") -> tuple[Engine, bool]:
    """The engine for `url` and whether it is an in-memory SQLite database."""
    parsed = sa.make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if synchronous.upper() not in ("NORMAL", "FULL", "EXTRA"):
            raise ValueError(f"synchronous must be NORMAL, FULL or EXTRA, not {synchronous!r}")
        memory = parsed.database in (None, "", ":memory:")
        kwargs: dict[str, Any] = {}
        if memory:
            # One connection shared by all threads, or every thread would see its own database.
            kwargs = {"poolclass": StaticPool, "connect_args": {"check_same_thread": False}}
        else:
            kwargs = {
                "connect_args": {"check_same_thread": False},
                "pool_size": 8,
                "max_overflow": 8,
            }
        engine = sa.create_engine(parsed, **kwargs)
        sa.event.listen(engine, "connect", _sqlite_pragmas(synchronous.upper()))
        sa.event.listen(engine, "begin", _sqlite_begin)
        return engine, memory
    if backend == "postgresql":
        engine = sa.create_engine(
            parsed, pool_size=8, max_overflow=8, pool_pre_ping=True, json_serializer=_encoded
        )
        return engine, False
    raise ValueError(f"unsupported database {backend!r}: use sqlite:// or postgresql+psycopg://")
