"""Compiling the local engine's filters and sort rules to SQL with the engine's exact semantics.

Each field becomes a small set of expressions over the JSON document: its kind (number,
string, bool, null, other, or `missing`), its value as a number and as a string. Predicates
always check the kind first, so `True` never equals `1` and strings never compare with numbers,
and they are two-valued (never SQL NULL), so `not` means what it means in Python.
`compile_filter` returns `(clause, exact)`: an inexact clause selects a superset (what the
database cannot decide, such as text match, is left to the Python engine). Field paths reach
SQL only as literals rendered by the dialect (needed so expression indexes match), and only
after a strict check; anything else is not compiled at all.
Must not import atoma_actors.runtime or atoma_actors.client.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from atoma_actors.core.filters import (
    And,
    Compare,
    FieldCheck,
    Filter,
    In,
    Not,
    Or,
    StringMatch,
)
from atoma_actors.core.sorting import SortRule
from atoma_actors.protocol.errors import ValidationError

__all__ = ["Compiler", "FieldSql", "SortColumn", "wide_int"]

Clause = ColumnElement[Any]
_UNSAFE_SEGMENT = re.compile(r'["\\\x00-\x1f\x7f]')
# PostgreSQL reads a path step as an array index the way strtol does (leading blanks and a
# sign allowed): any step that starts like a number is left to the Python engine.
_INT_LIKE = re.compile(r"^\s*[+-]?\d")
# SQLite binds integers as int64; wider ones (JSON allows them) are compared in Python.
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_MAX_FIELD = 200
_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _lit(text: str) -> Clause:
    # Rendered inline by the dialect's own quoting at execution: an expression index on the
    # same path then matches the query's expression.
    return sa.literal(text, sa.String(), literal_execute=True)


def wide_int(value: Any) -> bool:
    """Whether `value` is an integer SQLite cannot bind (outside int64)."""
    return (
        isinstance(value, int)
        and not isinstance(value, bool)
        and not _INT64_MIN <= value <= _INT64_MAX
    )


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@dataclass(frozen=True, slots=True)
class SortColumn:
    expr: Clause
    desc: bool


class FieldSql:
    """The SQL face of one field of the `data` document (or of the `id` column)."""

    def __init__(self, compiler: Compiler, field: str) -> None:
        self.c = compiler
        self.field = field
        self.is_id = field == "id"
        if self.is_id:
            # The id column always equals the document's own `id` string.
            self.kind: Clause = sa.literal("string" if compiler.postgres else "text")
            self.text: Clause = compiler.rows.c.id
            return
        data = compiler.rows.c.data
        own = [field]
        parts = field.split(".")
        if compiler.postgres:

            def jpath(segs: list[str]) -> Clause:
                return sa.func.jsonb_extract_path(data, *[_lit(s) for s in segs])

            if len(parts) == 1:
                j = jpath(own)
                self.text = sa.func.jsonb_extract_path_text(data, _lit(field))
            else:
                j = sa.func.coalesce(jpath(own), jpath(parts))
                self.text = j.op("#>>")(sa.literal_column("'{}'::text[]"))
            self.kind = sa.func.coalesce(sa.func.jsonb_typeof(j), "missing")
        else:

            def path(segs: list[str]) -> Clause:
                return _lit("$" + "".join(f'."{s}"' for s in segs))

            if len(parts) == 1:
                self.kind = sa.func.coalesce(sa.func.json_type(data, path(own)), "missing")
                self.text = sa.func.json_extract(data, path(own))
            else:
                own_type = sa.func.json_type(data, path(own))
                self.kind = sa.func.coalesce(
                    own_type, sa.func.json_type(data, path(parts)), "missing"
                )
                self.text = sa.case(
                    (own_type.is_not(None), sa.func.json_extract(data, path(own))),
                    else_=sa.func.json_extract(data, path(parts)),
                )

    # kinds ---------------------------------------------------------------------------------

    def is_number(self) -> Clause:
        if self.is_id:
            return sa.false()
        if self.c.postgres:
            return self.kind == "number"
        return self.kind.in_(["integer", "real"])

    def is_string(self) -> Clause:
        if self.is_id:
            return sa.true()
        return self.kind == ("string" if self.c.postgres else "text")

    def is_bool(self, value: bool) -> Clause:
        if self.is_id:
            return sa.false()
        if self.c.postgres:
            return sa.and_(self.kind == "boolean", self.text == ("true" if value else "false"))
        return self.kind == ("true" if value else "false")

    def is_any_bool(self) -> Clause:
        if self.c.postgres:
            return self.kind == "boolean"
        return self.kind.in_(["true", "false"])

    def is_null(self) -> Clause:
        return sa.false() if self.is_id else self.kind == "null"

    def exists(self) -> Clause:
        return sa.true() if self.is_id else self.kind.not_in(["missing", "null"])

    # values (only meaningful under the matching kind check) --------------------------------

    def num(self) -> Clause:
        if self.c.postgres:
            # Typed so that compared values bind as NUMERIC, not as BIGINT (out of range
            # for integers of 2**63 and more).
            num = sa.case((self.kind == "number", sa.cast(self.text, sa.Numeric)))
            return sa.type_coerce(num, sa.Numeric())
        return self.text

    def str(self) -> Clause:
        if self.is_id:
            return self.c.rows.c.id
        if self.c.postgres:
            return self.text.collate("C")
        return self.text

    def lowered(self) -> Clause:
        value = self.str()
        if self.c.postgres:
            return sa.func.translate(value, _UPPER, _UPPER.lower())
        return sa.func.atoma_lower(value)

    def non_ascii(self) -> Clause:
        value = self.c.rows.c.id if self.is_id else self.text
        return sa.func.length(value) != sa.func.octet_length(value)


class Compiler:
    """Compiles normalized filters and sort rules for one dialect over the rows table."""

    def __init__(self, rows: sa.Table, dialect: str) -> None:
        self.rows = rows
        self.postgres = dialect == "postgresql"
        self._fields: dict[str, FieldSql | None] = {}

    def field(self, name: str) -> FieldSql | None:
        """The SQL face of `name`, or None when the path is not safe to render."""
        if name in self._fields:
            return self._fields[name]
        out: FieldSql | None = None
        parts = name.split(".")
        ok = (
            len(name) <= _MAX_FIELD
            and all(parts)
            and not any(_UNSAFE_SEGMENT.search(p) for p in parts)
            # jsonb path steps index arrays by number; the engine walks mappings only.
            and not (self.postgres and any(_INT_LIKE.match(p) for p in parts[1:]))
        )
        if ok:
            out = FieldSql(self, name)
        self._fields[name] = out
        return out

    def number(self, value: Any) -> Any:
        """`value` ready to compare with a number column."""
        if self.postgres:
            # Bound as NUMERIC: left to itself an int binds as BIGINT, out of range at 2**63.
            return sa.literal(value, sa.Numeric())
        # SQLite reads stored integers wider than int64 as REAL: compare alike.
        return float(value) if wide_int(value) else value

    # filters -------------------------------------------------------------------------------

    def compile_filter(self, node: Filter | None) -> tuple[Clause | None, bool]:
        """`(clause, exact)`; clause None means TRUE. Inexact clauses select a superset."""
        if node is None:
            return None, True
        if isinstance(node, And):
            parts = [self.compile_filter(a) for a in node.args]
            clauses = [c for c, _ in parts if c is not None]
            exact = all(e for _, e in parts)
            if not clauses:
                return None, exact
            return (clauses[0] if len(clauses) == 1 else sa.and_(*clauses)), exact
        if isinstance(node, Or):
            if not node.args:
                return sa.false(), True
            parts = [self.compile_filter(a) for a in node.args]
            exact = all(e for _, e in parts)
            if any(c is None for c, _ in parts):
                return None, exact
            clauses = [c for c, _ in parts if c is not None]
            return (clauses[0] if len(clauses) == 1 else sa.or_(*clauses)), exact
        if isinstance(node, Not):
            inner, exact = self.compile_filter(node.arg)
            if not exact:
                return None, False
            return (sa.false() if inner is None else sa.not_(inner)), True
        field = getattr(node, "field", None)
        f = self.field(field) if isinstance(field, str) else None
        if f is None:
            return None, False
        if not self.postgres and (
            wide_int(getattr(node, "value", None))
            or any(wide_int(v) for v in getattr(node, "values", ()))
        ):
            return None, False
        if isinstance(node, Compare):
            return self._compare(f, node.op, node.value), True
        if isinstance(node, In):
            return self._in(f, node.values), True
        if isinstance(node, FieldCheck):
            return (f.is_null() if node.op == "isNull" else f.exists()), True
        if isinstance(node, StringMatch):
            return self._string_match(f, node.op, node.value)
        return None, False  # text match / fuzzy: the Python engine decides

    def _compare(self, f: FieldSql, op: str, value: Any) -> Clause:
        if op == "eq":
            if value is None:
                return f.is_null()
            if isinstance(value, bool):
                return f.is_bool(value)
            if isinstance(value, str):
                return sa.and_(f.is_string(), f.str() == value)
            return sa.and_(f.is_number(), f.num() == self.number(value))
        if isinstance(value, str):
            guard, expr = f.is_string(), f.str()
        else:
            guard, expr, value = f.is_number(), f.num(), self.number(value)
        cmp = {"gt": expr > value, "gte": expr >= value, "lt": expr < value, "lte": expr <= value}[
            op
        ]
        return sa.and_(guard, cmp)

    def _in(self, f: FieldSql, values: Sequence[Any]) -> Clause:
        strs = sorted({v for v in values if isinstance(v, str)})
        nums = [v for v in values if not isinstance(v, bool | str) and v is not None]
        ors: list[Clause] = []
        if strs:
            ors.append(sa.and_(f.is_string(), f.str().in_(strs)))
        if nums:
            ors.append(sa.and_(f.is_number(), f.num().in_([self.number(n) for n in nums])))
        for b in (True, False):
            if any(v is b for v in values):
                ors.append(f.is_bool(b))
        if any(v is None for v in values):
            ors.append(f.is_null())
        if not ors:
            return sa.false()
        return ors[0] if len(ors) == 1 else sa.or_(*ors)

    def _string_match(self, f: FieldSql, op: str, needle: str) -> tuple[Clause, bool]:
        low = needle.lower()
        pattern = {
            "startsWith": _like_escape(low) + "%",
            "endsWith": "%" + _like_escape(low),
            "contains": "%" + _like_escape(low) + "%",
        }[op]
        if not self.postgres:
            # atoma_lower is Python's str.lower, registered on each SQLite connection: exact.
            return sa.and_(f.is_string(), f.lowered().like(pattern, escape="\\")), True
        # PostgreSQL lower() follows the locale; folding ASCII only is exact for ASCII values
        # and the rest (which Python may fold differently) goes to the Python engine.
        if low.isascii():
            hit = sa.or_(f.lowered().like(pattern, escape="\\"), f.non_ascii())
        else:
            hit = f.non_ascii()
        return sa.and_(f.is_string(), hit), False

    # sorting -------------------------------------------------------------------------------

    def sort_columns(self, rules: Sequence[SortRule]) -> list[SortColumn] | None:
        """The ORDER BY columns of `rules`, or None when a field cannot be compiled.

        Per rule: a group (the engine's kind rank, null/missing always last), then the value
        as a number (bools as 0/1) and as a string; the value columns hold a constant outside
        their kind, so every column is non-null and plain comparisons serve keyset pages.
        """
        cols: list[SortColumn] = []
        for name, direction in rules:
            f = self.field(name)
            if f is None:
                return None
            desc = direction == "desc"
            if f.is_id:
                cols.append(SortColumn(self.rows.c.id, desc))
                continue
            ranks = (3, 2, 1, 0) if desc else (0, 1, 2, 3)  # number, string, bool, other
            group = sa.case(
                (f.is_number(), ranks[0]),
                (f.is_string(), ranks[1]),
                (f.is_any_bool(), ranks[2]),
                (f.kind.in_(["missing", "null"]), 4),
                else_=ranks[3],
            )
            num: sa.ColumnElement[Any] = sa.case(
                (f.is_number(), f.num()),
                (f.is_bool(True), 1),
                else_=0,
            )
            if self.postgres:
                # Typed by its literals the case would be INTEGER, and so would the keyset's
                # binds: a cursor value of 2**31 or more would then be out of range.
                num = sa.type_coerce(num, sa.Numeric())
            text: sa.ColumnElement[Any] = sa.case((f.is_string(), f.str()), else_="")
            if self.postgres:
                text = text.collate("C")
            cols += [SortColumn(group, False), SortColumn(num, desc), SortColumn(text, desc)]
        return cols

    def key_values(self, rules: Sequence[SortRule], values: Sequence[Any]) -> list[Any]:
        """The values of `sort_columns` for an entity whose sort values are `values`.

        Values a real entity cannot have (decoded from a crafted cursor) are a
        `ValidationError`, not a database error.
        """
        out: list[Any] = []
        for (name, direction), v in zip(rules, values, strict=True):
            _check_cursor_value(v, name, postgres=self.postgres)
            if name == "id":
                out.append(v)
                continue
            desc = direction == "desc"
            ranks = (3, 2, 1, 0) if desc else (0, 1, 2, 3)
            if v is None:
                out += [4, 0, ""]
            elif isinstance(v, bool):
                out += [ranks[2], int(v), ""]
            elif isinstance(v, int | float) and not math.isnan(v):
                # SQLite reads stored integers wider than int64 as REAL: compare alike.
                out += [ranks[0], self.number(v), ""]
            elif isinstance(v, str):
                out += [ranks[1], 0, v]
            else:
                out += [ranks[3], 0, ""]
        return out

    @staticmethod
    def keyset(cols: Sequence[SortColumn], values: Sequence[Any], *, after: bool) -> Clause:
        """Rows strictly after (or before) the position `values` in the order of `cols`."""
        ors: list[Clause] = []
        for i, (col, value) in enumerate(zip(cols, values, strict=True)):
            forward = after != col.desc
            step = col.expr > value if forward else col.expr < value
            eqs = [c.expr == v for c, v in zip(cols[:i], values[:i], strict=True)]
            ors.append(sa.and_(*eqs, step) if eqs else step)
        return sa.or_(*ors)


def _bad_cursor(message: str) -> ValidationError:
    return ValidationError(f"invalid cursor: {message}", code="INVALID_CURSOR")


def _check_cursor_value(value: Any, field: str, *, postgres: bool) -> None:
    if field == "id" and not isinstance(value, str):
        raise _bad_cursor("the id sort value must be a string")
    if isinstance(value, float) and math.isinf(value):
        raise _bad_cursor(f"non-finite sort value for {field!r}")
    if isinstance(value, str):
        try:
            value.encode()
        except UnicodeEncodeError:
            raise _bad_cursor(f"sort value for {field!r} is not valid text") from None
        if postgres and "\x00" in value:
            raise _bad_cursor(f"sort value for {field!r} holds U+0000")
