"""Query ops: run in the database what compiles exactly, hand the rest to the local engine.

Plan: the query is normalized by `atoma_actors.core.query` (same validation, same errors).
When the whole filter and every sort field compile exactly, SQL filters, orders and cuts the
page (offset pages with LIMIT/OFFSET, cursor pages by keyset) and counts the total. Otherwise
SQL selects the candidate rows (a superset when the filter is inexact, never more than
`Limits.max_candidates`) and `core.query.evaluate` decides on them, so the result is the
engine's by construction. Also: expression indexes on declared fields.
Must not import atoma_actors.runtime or atoma_actors.client.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import Grouping

from atoma_actors.core.cursor import encode_cursor
from atoma_actors.core.paging import CursorPage, OffsetPage
from atoma_actors.core.query import Query, evaluate, normalize_query
from atoma_actors.core.sorting import sort_values
from atoma_actors.protocol.errors import LimitsError
from atoma_actors.protocol.ops import QuerySpec
from atoma_actors.protocol.results import PageInfo, QueryResultData

from ._limits import Limits, check_resource
from ._schema import Tables
from ._sqlquery import Compiler

__all__ = ["IndexSpec", "create_indexes", "run_query"]


@dataclass(frozen=True, slots=True)
class IndexSpec:
    resource: str
    field: str
    name: str


def create_indexes(
    conn: sa.Connection, t: Tables, indexes: Mapping[str, Sequence[str]], comp: Compiler
) -> list[IndexSpec]:
    """Create (if missing) an expression index per `{resource: [field, ...]}` entry.

    The indexed expressions are the very ones the compiler emits, so the planner can use them
    for eq/in/range filters; PostgreSQL gets one for the numeric and one for the string face.
    """
    specs = []
    for resource, fields in indexes.items():
        check_resource(resource)
        for name in fields:
            f = comp.field(name)
            if f is None or f.is_id:
                raise ValueError(f"cannot index field {name!r} of {resource!r}")
            digest = hashlib.sha1(f"{resource}\0{name}".encode()).hexdigest()[:16]
            ix_name = f"ix_atoma_{digest}"
            exprs = [f.num(), f.str()] if comp.postgres else [f.text]
            for i, expr in enumerate(exprs):
                # PostgreSQL wants an index expression in parentheses.
                ix = sa.Index(f"{ix_name}_{i}", t.rows.c.resource, Grouping(expr))
                # Created here, not by create_all: drop it from the shared table object.
                t.rows.indexes.discard(ix)
                conn.execute(sa.schema.CreateIndex(ix, if_not_exists=True))
            specs.append(IndexSpec(resource, name, ix_name))
    return specs


# OFFSET and LIMIT are bigint in both databases; larger values mean "past the end" anyway.
_BIGINT_MAX = 2**63 - 1


def _fetch(limit: int) -> int:
    """Rows to fetch for a page of `limit`: one more tells whether a next page exists."""
    return min(limit + 1, _BIGINT_MAX)


def _page_info(has_next: bool, total: int | None, cursor: str | None = None) -> PageInfo:
    return PageInfo(has_next=has_next, total=total, cursor=cursor)


def run_query(
    conn: sa.Connection,
    t: Tables,
    spec: QuerySpec,
    *,
    comp: Compiler,
    limits: Limits,
    indexes: Sequence[IndexSpec] = (),
) -> tuple[QueryResultData, str]:
    """The query's result and where it was decided: "sql" or "python" (over candidates)."""
    resource = check_resource(spec.resource)
    q = normalize_query(spec.query)
    rows = t.rows
    where, exact = comp.compile_filter(q.filter)
    base = [rows.c.resource == resource, rows.c.deleted == sa.false()]
    conds = [*base, where] if where is not None else base
    cols = comp.sort_columns(q.sort) if exact else None
    if cols is None:
        return _in_python(conn, t, conds, q, limits), "python"

    order = [c.expr.desc() if c.desc else c.expr.asc() for c in cols]
    page = q.page
    total = None
    if page is not None and page.include_total:
        count = sa.select(sa.func.count()).select_from(rows).where(*conds)
        total = conn.execute(count).scalar_one()
    stmt = sa.select(rows.c.data).where(*conds)

    if page is None:
        data = list(conn.execute(stmt.order_by(*order)).scalars())
        return QueryResultData(data=data, page_info=_page_info(False, None)), "sql"
    if isinstance(page, OffsetPage):
        stmt = stmt.order_by(*order).offset(min(page.offset, _BIGINT_MAX))
        if page.limit is None:
            data = list(conn.execute(stmt).scalars())
            return QueryResultData(data=data, page_info=_page_info(False, total)), "sql"
        data = list(conn.execute(stmt.limit(_fetch(page.limit))).scalars())
        has_next = len(data) > page.limit
        info = _page_info(has_next, total)
        return QueryResultData(data=data[: page.limit], page_info=info), "sql"

    assert isinstance(page, CursorPage)
    before = page.before is not None and page.values is not None
    if page.values is not None:
        key = comp.key_values(q.sort, list(page.values))
        stmt = stmt.where(comp.keyset(cols, key, after=not before))
    if before:
        order = [c.expr.asc() if c.desc else c.expr.desc() for c in cols]
    data = list(conn.execute(stmt.order_by(*order).limit(_fetch(page.limit))).scalars())
    has_next = len(data) > page.limit
    data = data[: page.limit]
    if before:
        data.reverse()
    cursor = None
    if data:
        edge = data[0] if page.before is not None else data[-1]
        cursor = encode_cursor(q.sort, sort_values(edge, q.sort))
    return QueryResultData(data=data, page_info=_page_info(has_next, total, cursor)), "sql"


def _in_python(
    conn: sa.Connection, t: Tables, conds: list[Any], q: Query, limits: Limits
) -> QueryResultData:
    stmt = sa.select(t.rows.c.data).where(*conds).limit(limits.max_candidates + 1)
    candidates = list(conn.execute(stmt).scalars())
    if len(candidates) > limits.max_candidates:
        raise LimitsError(
            f"the query selects more than {limits.max_candidates} candidate rows for the parts "
            "the database cannot evaluate (text match, unusual field names); narrow the filter",
            code="QUERY_TOO_BROAD",
        )
    found = evaluate(candidates, q)
    return QueryResultData(data=found.data, page_info=found.page_info)
