"""Filter trees: validation into frozen nodes, and compilation into one fast predicate.

`normalize_filter(raw)` turns the wire dict (`{"op": "eq", "field", "value"}` …, DESIGN §4)
into immutable nodes or raises `ValidationError` naming the offending path. `compile_filter`
turns a node tree into a closure, built once per query, that answers for one entity.
Semantics are strict: `True` is not `1`, strings never compare with numbers, `eq null` /
`isNull` match an explicit null only. Must not import anything from atoma_actors outside
`core` and `protocol`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from atoma_actors.protocol.errors import ValidationError

from .fields import MISSING, field_getter, is_number, is_scalar
from .text import tokenize, within_distance

__all__ = [
    "COMPARE_OPS",
    "And",
    "Compare",
    "FieldCheck",
    "Filter",
    "In",
    "Not",
    "Or",
    "Predicate",
    "Scan",
    "StringMatch",
    "Text",
    "compile_filter",
    "compile_scan",
    "filter_to_dict",
    "normalize_filter",
]

COMPARE_OPS = frozenset({"eq", "gt", "gte", "lt", "lte"})
RANGE_OPS = frozenset({"gt", "gte", "lt", "lte"})
STRING_OPS = frozenset({"startsWith", "endsWith", "contains"})


@dataclass(frozen=True, slots=True)
class And:
    args: tuple[Filter, ...]
    op: ClassVar[str] = "and"


@dataclass(frozen=True, slots=True)
class Or:
    args: tuple[Filter, ...]
    op: ClassVar[str] = "or"


@dataclass(frozen=True, slots=True)
class Not:
    arg: Filter
    op: ClassVar[str] = "not"


@dataclass(frozen=True, slots=True)
class Compare:
    """`eq` (value: null, bool, number or string) or a range op (value: number or string)."""

    op: Literal["eq", "gt", "gte", "lt", "lte"]
    field: str
    value: Any


@dataclass(frozen=True, slots=True)
class In:
    field: str
    values: tuple[Any, ...]
    op: ClassVar[str] = "in"


@dataclass(frozen=True, slots=True)
class StringMatch:
    """Case-insensitive `startsWith` / `endsWith` / `contains` on string fields."""

    op: Literal["startsWith", "endsWith", "contains"]
    field: str
    value: str


@dataclass(frozen=True, slots=True)
class FieldCheck:
    """`isNull` (present and null) or `exists` (present and not null)."""

    op: Literal["isNull", "exists"]
    field: str


@dataclass(frozen=True, slots=True)
class Text:
    field: str
    query: str
    mode: Literal["match", "fuzzy"] = "match"
    distance: int = 1
    op: ClassVar[str] = "text"


Filter = And | Or | Not | Compare | In | StringMatch | FieldCheck | Text
Predicate = Callable[[Any], bool]
Scan = Callable[[Iterable[Any]], list[Any]]
_NODES = (And, Or, Not, Compare, In, StringMatch, FieldCheck, Text)

_KEYS: dict[str, frozenset[str]] = {
    "and": frozenset({"op", "args"}),
    "or": frozenset({"op", "args"}),
    "not": frozenset({"op", "arg"}),
    "in": frozenset({"op", "field", "values"}),
    "isNull": frozenset({"op", "field"}),
    "exists": frozenset({"op", "field"}),
    "text": frozenset({"op", "field", "query", "mode", "distance"}),
    **{op: frozenset({"op", "field", "value"}) for op in COMPARE_OPS | STRING_OPS},
}
_REQUIRED: dict[str, frozenset[str]] = {
    "text": frozenset({"op", "field", "query"}),
}


def _fail(path: str, message: str) -> ValidationError:
    return ValidationError(f"invalid query: {path}: {message}", code="INVALID_QUERY")


def _describe(value: Any) -> str:
    return f"{type(value).__name__} {value!r}"[:80]


def normalize_filter(raw: Any, path: str = "filter") -> Filter | None:
    """Validate a wire filter; `None` stays `None`, an already-normalized node is returned."""
    if raw is None:
        return None
    return _normalize(raw, path)


def _normalize(raw: Any, path: str) -> Filter:
    if isinstance(raw, _NODES):
        return raw
    if not isinstance(raw, Mapping):
        raise _fail(path, f"expected an object with an 'op', got {_describe(raw)}")
    op = raw.get("op")
    if not isinstance(op, str) or op not in _KEYS:
        raise _fail(path, f"unknown op {op!r} (expected one of {', '.join(sorted(_KEYS))})")
    path = f"{path}({op})"
    extra = set(raw) - _KEYS[op]
    if extra:
        raise _fail(path, f"unexpected key(s) {sorted(map(str, extra))}")
    missing = _REQUIRED.get(op, _KEYS[op]) - set(raw)
    if missing:
        raise _fail(path, f"missing key(s) {sorted(missing)}")

    if op in ("and", "or"):
        args = raw["args"]
        if not isinstance(args, list | tuple):
            raise _fail(path, f"'args' must be a list of filters, got {_describe(args)}")
        nodes = tuple(_normalize(a, f"{path}.args[{i}]") for i, a in enumerate(args))
        return And(nodes) if op == "and" else Or(nodes)
    if op == "not":
        return Not(_normalize(raw["arg"], f"{path}.arg"))

    field = raw["field"]
    if not isinstance(field, str) or not field:
        raise _fail(path, f"'field' must be a non-empty string, got {_describe(field)}")

    if op == "eq":
        value = raw["value"]
        if not is_scalar(value):
            raise _fail(
                path, f"'value' must be null, a bool, a number or a string, got {_describe(value)}"
            )
        return Compare("eq", field, value)
    if op in RANGE_OPS:
        value = raw["value"]
        if not (isinstance(value, str) or (is_number(value) and math.isfinite(value))):
            raise _fail(path, f"'value' must be a number or a string, got {_describe(value)}")
        return Compare(op, field, value)  # type: ignore[arg-type]
    if op == "in":
        values = raw["values"]
        if not isinstance(values, list | tuple):
            raise _fail(path, f"'values' must be a list, got {_describe(values)}")
        for i, v in enumerate(values):
            if not is_scalar(v):
                raise _fail(
                    path,
                    f"values[{i}] must be null, a bool, a number or a string, got {_describe(v)}",
                )
        return In(field, tuple(values))
    if op in STRING_OPS:
        value = raw["value"]
        if not isinstance(value, str):
            raise _fail(path, f"'value' must be a string, got {_describe(value)}")
        return StringMatch(op, field, value)  # type: ignore[arg-type]
    if op in ("isNull", "exists"):
        return FieldCheck(op, field)  # type: ignore[arg-type]

    query = raw["query"]
    if not isinstance(query, str):
        raise _fail(path, f"'query' must be a string, got {_describe(query)}")
    mode = raw.get("mode", "match")
    if mode is None:
        mode = "match"
    if mode not in ("match", "fuzzy"):
        raise _fail(path, f"'mode' must be 'match' or 'fuzzy', got {_describe(mode)}")
    distance = raw.get("distance", 1)
    if distance is None:
        distance = 1
    if isinstance(distance, bool) or distance not in (0, 1, 2) or not is_number(distance):
        raise _fail(path, f"'distance' must be 0, 1 or 2, got {_describe(distance)}")
    return Text(field, query, mode, int(distance))


def filter_to_dict(node: Filter) -> dict[str, Any]:
    """The wire form of a normalized node."""
    if isinstance(node, And | Or):
        return {"op": node.op, "args": [filter_to_dict(a) for a in node.args]}
    if isinstance(node, Not):
        return {"op": "not", "arg": filter_to_dict(node.arg)}
    if isinstance(node, In):
        return {"op": "in", "field": node.field, "values": list(node.values)}
    if isinstance(node, FieldCheck):
        return {"op": node.op, "field": node.field}
    if isinstance(node, Text):
        return {
            "op": "text",
            "field": node.field,
            "query": node.query,
            "mode": node.mode,
            "distance": node.distance,
        }
    return {"op": node.op, "field": node.field, "value": node.value}


# --- compilation ---------------------------------------------------------------------------
#
# A tree is compiled into the source of one Python expression over the entity `e`, then
# `exec`ed once per query: the scan becomes a single list comprehension with no call per
# node. User values never enter the source; they are bound as names (`c0`, `c1`, …) in the
# namespace, so the generated code is fixed by the tree's shape alone.


class _Codegen:
    def __init__(self) -> None:
        self.ns: dict[str, Any] = {
            "M": MISSING,
            "NUM": _NUMBER_TYPES,
            "bool": bool,
            "str": str,
            "int": int,
            "float": float,
            "isinstance": isinstance,
        }

    def const(self, value: Any) -> str:
        name = f"c{len(self.ns)}"
        self.ns[name] = value
        return name

    def get(self, field: str) -> str:
        if "." in field:
            return f"{self.const(field_getter(field))}(e)"
        return f"e.get({self.const(field)}, M)"

    def expr(self, node: Filter) -> str:
        if isinstance(node, And):
            if not node.args:
                return "True"
            return "(" + " and ".join(self.expr(a) for a in node.args) + ")"
        if isinstance(node, Or):
            if not node.args:
                return "False"
            return "(" + " or ".join(self.expr(a) for a in node.args) + ")"
        if isinstance(node, Not):
            return f"(not {self.expr(node.arg)})"
        if isinstance(node, Compare):
            return self.compare(node)
        if isinstance(node, In):
            return self.in_(node)
        if isinstance(node, StringMatch):
            needle = self.const(node.value.lower())
            method = {"startsWith": "startswith", "endsWith": "endswith"}.get(node.op)
            test = f"v.lower().{method}({needle})" if method else f"{needle} in v.lower()"
            return f"(isinstance(v := {self.get(node.field)}, str) and {test})"
        if isinstance(node, FieldCheck):
            if node.op == "isNull":
                return f"({self.get(node.field)} is None)"
            return f"((v := {self.get(node.field)}) is not None and v is not M)"
        return f"{self.const(_text(node))}(e)"

    def compare(self, node: Compare) -> str:
        get, value = self.get(node.field), node.value
        if node.op == "eq":
            if value is None:
                return f"({get} is None)"
            c = self.const(value)
            if isinstance(value, bool):
                return f"({get} is {c})"  # `is`: True must not equal 1 nor 1.0
            if isinstance(value, str):
                return f"({get} == {c})"  # a str never equals a number in Python
            return f"((v := {get}) == {c} and v.__class__ is not bool)"
        c = self.const(value)
        sym = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}[node.op]
        if isinstance(value, str):
            return f"(isinstance(v := {get}, str) and v {sym} {c})"
        # Only numbers compare with numbers; bool is an int subclass and is refused.
        return (
            f"(((v := {get}).__class__ is int or v.__class__ is float"
            f" or (isinstance(v, NUM) and v.__class__ is not bool)) and v {sym} {c})"
        )

    def in_(self, node: In) -> str:
        get = self.get(node.field)
        strs = frozenset(v for v in node.values if isinstance(v, str))
        others = tuple(v for v in node.values if not isinstance(v, str))
        slow = self.const(_in_others(others))
        if not strs:
            return f"{slow}({get})"
        # The condition of `x if c else y` runs first, so it is the one that binds `v`.
        return f"((v in {self.const(strs)}) if (v := {get}).__class__ is str else {slow}(v))"


def _in_others(values: tuple[Any, ...]) -> Callable[[Any], bool]:
    """Membership among the non-string values of an `in` (null, bools, numbers)."""
    numbers = frozenset(v for v in values if v is not None and not isinstance(v, bool))
    bools = frozenset(v for v in values if isinstance(v, bool))
    has_null = any(v is None for v in values)

    def member(v: Any) -> bool:
        if v is None:
            return has_null
        if v.__class__ is bool:
            return v in bools
        if isinstance(v, str):
            return False
        try:
            return v in numbers
        except TypeError:  # unhashable (a list or a dict) never equals a scalar
            return False

    return member


def _text(node: Text) -> Predicate:
    get = field_getter(node.field)
    wanted = frozenset(tokenize(node.query))
    if not wanted:
        return _never
    if node.mode == "match":

        def match(e: Any) -> bool:
            v = get(e)
            return isinstance(v, str) and wanted.issubset(tokenize(v))

        return match

    distance = node.distance

    def fuzzy(e: Any) -> bool:
        v = get(e)
        if not isinstance(v, str):
            return False
        doc = set(tokenize(v))
        if not doc:
            return False
        return all(q in doc or any(within_distance(q, t, distance) for t in doc) for q in wanted)

    return fuzzy


def _always(_entity: Any) -> bool:
    return True


def _never(_entity: Any) -> bool:
    return False


def _all_items(source: Iterable[Any]) -> list[Any]:
    return list(source)


_NUMBER_TYPES = (int, float)


_CACHE: dict[str, tuple[Predicate, Scan]] = {}
_CACHE_SIZE = 256


def _compiled(node: Filter) -> tuple[Predicate, Scan]:
    # Keyed by repr, not by the node: nodes compare like their values, and `True == 1`
    # would hand an `eq true` filter the code compiled for `eq 1`.
    key = repr(node)
    hit = _CACHE.get(key)
    if hit is not None:
        return hit
    if len(_CACHE) >= _CACHE_SIZE:
        _CACHE.clear()
    hit = _CACHE[key] = _build(node)
    return hit


def _build(node: Filter) -> tuple[Predicate, Scan]:
    gen = _Codegen()
    expr = gen.expr(node)
    src = (
        f"def pred(e):\n    return {expr}\ndef scan(src):\n    return [e for e in src if {expr}]\n"
    )
    exec(compile(src, "<atoma query filter>", "exec"), gen.ns)
    return gen.ns["pred"], gen.ns["scan"]


def compile_filter(node: Filter | None) -> Predicate:
    """One predicate for the whole tree (built once per distinct filter)."""
    if node is None:
        return _always
    return _compiled(node)[0]


def compile_scan(node: Filter | None) -> Scan:
    """`scan(entities) -> [matching entities]`: the filter as one list comprehension."""
    if node is None:
        return _all_items
    return _compiled(node)[1]
