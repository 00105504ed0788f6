"""Fixtures of the SQL backend tests: the same tests run on a SQLite file and, when a server
answers on 127.0.0.1:5432, on a PostgreSQL schema created for the test and dropped after."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from atoma_backend_sql import SqlBackend

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"

_pg_state: dict[str, Any] = {}


def _pg_reason() -> str | None:
    """None when PostgreSQL answers, else why it cannot be used (checked once per session)."""
    if "reason" not in _pg_state:
        try:
            engine = sa.create_engine(PG_URL, connect_args={"connect_timeout": 3})
            with engine.connect() as conn:
                conn.execute(sa.text("select 1"))
            engine.dispose()
            _pg_state["reason"] = None
        except Exception as exc:  # any failure to reach it means: skip, and say why
            _pg_state["reason"] = f"PostgreSQL not reachable at {PG_URL}: {exc!s:.200}"
    return _pg_state["reason"]


Factory = Callable[..., SqlBackend]


@pytest.fixture(params=["sqlite", "postgres"])
def make_backend(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Factory]:
    """A factory of backends on one database: calling it again reopens the same data
    (a restart). Every backend made is closed at the end."""
    made: list[SqlBackend] = []
    schema = None
    if request.param == "postgres":
        reason = _pg_reason()
        if reason is not None:
            pytest.skip(reason)
        schema = f"t_{uuid.uuid4().hex[:16]}"
        url = PG_URL
    else:
        url = f"sqlite:///{tmp_path / 'atoma.db'}"

    def factory(**kwargs: Any) -> SqlBackend:
        backend = SqlBackend(url, schema=schema, **kwargs)
        made.append(backend)
        return backend

    yield factory
    for b in made:
        b.close()
    if schema is not None:
        engine = sa.create_engine(PG_URL)
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        engine.dispose()


@pytest.fixture
def backend(make_backend: Factory) -> SqlBackend:
    return make_backend()
