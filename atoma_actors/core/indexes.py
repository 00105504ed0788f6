"""Secondary indexes of a store and the planner that asks them for candidate ids.

`IndexSet(specs)` is built from a schema's `indexes: [{field, type}]`: a value index for
`string` / `number` / `date` fields (hash lookup for `eq`/`in`, sorted range scans for
`gt/gte/lt/lte`, per value kind so numbers never meet strings) and a token index for `text`
fields (`match` and `fuzzy`). Updates are incremental (`add` / `remove` / `replace`).
`candidates(query)` returns a superset of the ids the filter can match, or None when no index
helps; the full filter always runs on the candidates, so an index can never change a result.
Not thread-safe: the owner (the StoreActor) serializes mutations and guards `candidates`.
Must not import anything from atoma_actors outside `core` and `protocol`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from math import isnan
from typing import Any

from sortedcontainers import SortedDict

from atoma_actors.protocol.errors import ValidationError

from .fields import MISSING, field_getter
from .filters import And, Compare, FieldCheck, Filter, In, Not, Or, Text
from .query import Query, normalize_query
from .text import tokenize, within_distance

__all__ = ["INDEX_TYPES", "IndexSet"]

INDEX_TYPES = frozenset({"string", "number", "date", "text"})

# A value's slot in a value index: (kind, value). Kinds keep `True` apart from `1`.
_NUM, _STR, _BOOL, _NULL = "n", "s", "b", "z"


def _slot(value: Any) -> tuple[str, Any] | None:
    if value is MISSING:
        return None
    if value is None:
        return (_NULL, None)
    if isinstance(value, bool):
        return (_BOOL, bool(value))
    if isinstance(value, int):
        return (_NUM, value)
    if isinstance(value, float):
        # NaN matches nothing and would corrupt a sorted container.
        return None if isnan(value) else (_NUM, value)
    if isinstance(value, str):
        return (_STR, value)
    return None  # lists and objects never match eq/in/range


class _ValueIndex:
    """Hash + sorted index over one field's scalar values."""

    __slots__ = ("_bools", "_get", "_nulls", "_nums", "_slots", "_strs")

    def estimate(self, node: Compare) -> int:
        """About how many ids a range lookup would return (without building the set)."""
        buckets = self._strs if isinstance(node.value, str) else self._nums
        if not buckets:
            return 0
        value, op = node.value, node.op
        if op == "gt":
            keys = len(buckets) - buckets.bisect_right(value)
        elif op == "gte":
            keys = len(buckets) - buckets.bisect_left(value)
        elif op == "lt":
            keys = buckets.bisect_left(value)
        else:
            keys = buckets.bisect_right(value)
        return keys * max(1, len(self._slots) // max(1, len(self._nums) + len(self._strs)))

    def load(self, pairs: Iterable[tuple[str, Any]]) -> None:
        """Bulk-index `(id, entity)` pairs into an empty index (one sort instead of inserts)."""
        if self._slots:
            for eid, entity in pairs:
                self.add(eid, entity)
            return
        nums: dict[Any, set[str]] = {}
        strs: dict[Any, set[str]] = {}
        get, slots = self._get, self._slots
        for eid, entity in pairs:
            slot = _slot(get(entity))
            if slot is None:
                continue
            old = slots.get(eid)
            if old is not None:  # a repeated id: keep the last one, like `add` does
                self._forget(old, eid, nums, strs)
            slots[eid] = slot
            kind, value = slot
            if kind == _NULL:
                self._nulls.add(eid)
            elif kind == _BOOL:
                self._bools[value].add(eid)
            else:
                (nums if kind == _NUM else strs).setdefault(value, set()).add(eid)
        self._nums.update(nums)
        self._strs.update(strs)

    def _forget(self, slot: tuple[str, Any], eid: str, nums: dict, strs: dict) -> None:
        kind, value = slot
        if kind == _NULL:
            self._nulls.discard(eid)
        elif kind == _BOOL:
            self._bools[value].discard(eid)
        else:
            ids = (nums if kind == _NUM else strs).get(value)
            if ids is not None:
                ids.discard(eid)
                if not ids:
                    del (nums if kind == _NUM else strs)[value]

    def __init__(self, field: str) -> None:
        self._get = field_getter(field)
        self._nums: SortedDict = SortedDict()
        self._strs: SortedDict = SortedDict()
        self._bools: dict[bool, set[str]] = {True: set(), False: set()}
        self._nulls: set[str] = set()
        self._slots: dict[str, tuple[str, Any]] = {}

    def add(self, eid: str, entity: Any) -> None:
        slot = _slot(self._get(entity))
        old = self._slots.get(eid)
        if old == slot:
            return
        if old is not None:
            self.remove(eid)
        if slot is None:
            return
        self._slots[eid] = slot
        kind, value = slot
        if kind == _NULL:
            self._nulls.add(eid)
        elif kind == _BOOL:
            self._bools[value].add(eid)
        else:
            buckets = self._nums if kind == _NUM else self._strs
            ids = buckets.get(value)
            if ids is None:
                buckets[value] = {eid}
            else:
                ids.add(eid)

    def remove(self, eid: str) -> None:
        slot = self._slots.pop(eid, None)
        if slot is not None:
            self._forget(slot, eid, self._nums, self._strs)

    def clear(self) -> None:
        self._nums.clear()
        self._strs.clear()
        self._bools = {True: set(), False: set()}
        self._nulls.clear()
        self._slots.clear()

    def equal(self, value: Any) -> Iterable[str]:
        if value is None:
            return self._nulls
        if isinstance(value, bool):
            return self._bools[value]
        buckets = self._strs if isinstance(value, str) else self._nums
        return buckets.get(value, ())

    def lookup(self, node: Compare | In | FieldCheck) -> set[str] | None:
        if isinstance(node, In):
            out: set[str] = set()
            for v in node.values:
                out.update(self.equal(v))
            return out
        if isinstance(node, FieldCheck):
            return set(self._nulls) if node.op == "isNull" else None
        op, value = node.op, node.value
        if op == "eq":
            return set(self.equal(value))
        buckets = self._strs if isinstance(value, str) else self._nums
        if op in ("gt", "gte"):
            keys = buckets.irange(minimum=value, inclusive=(op == "gte", True))
        else:
            keys = buckets.irange(maximum=value, inclusive=(True, op == "lte"))
        out = set()
        for k in keys:
            out.update(buckets[k])
        return out


class _TokenIndex:
    """Inverted index token -> ids over one text field."""

    __slots__ = ("_get", "_postings", "_tokens")

    def __init__(self, field: str) -> None:
        self._get = field_getter(field)
        self._postings: dict[str, set[str]] = {}
        self._tokens: dict[str, frozenset[str]] = {}

    def add(self, eid: str, entity: Any) -> None:
        tokens = frozenset(tokenize(self._get(entity)))
        old = self._tokens.get(eid)
        if old == tokens:
            return
        if old is not None:
            self.remove(eid)
        if not tokens:
            return
        self._tokens[eid] = tokens
        postings = self._postings
        for t in tokens:
            ids = postings.get(t)
            if ids is None:
                postings[t] = {eid}
            else:
                ids.add(eid)

    def remove(self, eid: str) -> None:
        tokens = self._tokens.pop(eid, None)
        if not tokens:
            return
        for t in tokens:
            ids = self._postings.get(t)
            if ids is not None:
                ids.discard(eid)
                if not ids:
                    del self._postings[t]

    def load(self, pairs: Iterable[tuple[str, Any]]) -> None:
        for eid, entity in pairs:
            self.add(eid, entity)

    def clear(self) -> None:
        self._postings.clear()
        self._tokens.clear()

    def lookup(self, node: Text) -> set[str]:
        wanted = set(tokenize(node.query))
        if not wanted:
            return set()
        per_token: list[set[str]] = []
        for q in wanted:
            if node.mode == "match":
                ids = self._postings.get(q)
                if not ids:
                    return set()
                per_token.append(ids)
                continue
            near: set[str] = set()
            d = node.distance
            for t, ids in self._postings.items():
                if abs(len(t) - len(q)) <= d and within_distance(q, t, d):
                    near |= ids
            if not near:
                return set()
            per_token.append(near)
        per_token.sort(key=len)
        out = set(per_token[0])
        for ids in per_token[1:]:
            out &= ids
        return out


class IndexSet:
    """The indexes of one store, kept up to date entity by entity."""

    def __init__(self, specs: Iterable[Mapping[str, Any]] | None = None) -> None:
        self._values: dict[str, _ValueIndex] = {}
        self._texts: dict[str, _TokenIndex] = {}
        self.specs: tuple[tuple[str, str], ...] = ()
        seen = []
        for i, spec in enumerate(specs or ()):
            if not isinstance(spec, Mapping):
                raise ValidationError(f"indexes[{i}] must be an object {{field, type}}")
            field, kind = spec.get("field"), spec.get("type")
            if not isinstance(field, str) or not field:
                raise ValidationError(f"indexes[{i}].field must be a non-empty string")
            if kind not in INDEX_TYPES:
                raise ValidationError(
                    f"indexes[{i}].type must be one of {sorted(INDEX_TYPES)}, got {kind!r}"
                )
            if kind == "text":
                self._texts.setdefault(field, _TokenIndex(field))
            else:
                # string/number/date share one structure: values are bucketed by kind anyway.
                self._values.setdefault(field, _ValueIndex(field))
            seen.append((field, kind))
        self.specs = tuple(seen)

    @classmethod
    def from_schema(cls, schema: Mapping[str, Any] | None) -> IndexSet:
        """The index set a schema `{"indexes": [{field, type}]}` declares."""
        return cls((schema or {}).get("indexes") or ())

    def __bool__(self) -> bool:
        return bool(self._values or self._texts)

    def _all(self) -> list[_ValueIndex | _TokenIndex]:
        return [*self._values.values(), *self._texts.values()]

    @staticmethod
    def _id(entity: Any) -> str:
        try:
            eid = entity["id"]
        except (KeyError, TypeError) as exc:
            raise ValidationError("an indexed entity needs an 'id'") from exc
        return eid

    def add(self, entity: Mapping[str, Any]) -> None:
        """Index `entity` (an entity already indexed under its id is re-indexed)."""
        eid = self._id(entity)
        for index in self._all():
            index.add(eid, entity)

    def add_many(self, entities: Iterable[Mapping[str, Any]]) -> None:
        """Index many entities; into empty indexes this is one bulk load, not n inserts."""
        pairs = [(self._id(e), e) for e in entities]
        for index in self._all():
            index.load(pairs)

    def remove(self, entity: Mapping[str, Any]) -> None:
        """Forget `entity` (by its id; what it holds now does not matter)."""
        eid = self._id(entity)
        for index in self._all():
            index.remove(eid)

    def replace(self, old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> None:
        """`old` became `new` (either may be None for an insert or a delete)."""
        if old is not None and (new is None or self._id(old) != self._id(new)):
            self.remove(old)
        if new is not None:
            self.add(new)

    def clear(self) -> None:
        for index in self._all():
            index.clear()

    def candidates(self, query: Query | Mapping[str, Any] | None) -> set[str] | None:
        """A superset of the ids `query`'s filter can match, or None when no index helps."""
        q = normalize_query(query)
        if q.filter is None:
            return None
        return self._plan(q.filter)

    def _plan_and(self, node: And) -> set[str] | None:
        # Exact lookups first; a range scan only when it is estimated to shrink the set
        # (building a set of most ids costs more than filtering a few candidates).
        ranges: list[tuple[int, _ValueIndex, Compare]] = []
        known: list[set[str]] = []
        for arg in node.args:
            index = self._values.get(arg.field) if isinstance(arg, Compare) else None
            if index is not None and arg.op != "eq":
                ranges.append((index.estimate(arg), index, arg))  # type: ignore[arg-type]
                continue
            found = self._plan(arg)
            if found is not None:
                known.append(found)
        known.sort(key=len)
        out: set[str] | None = set.intersection(*known) if known else None
        for estimate, index, arg in sorted(ranges, key=lambda r: r[0]):
            if out is not None and estimate >= len(out):
                break
            found = index.lookup(arg)
            if found is not None:  # None: this index cannot answer that node
                out = found if out is None else (out & found)
        return out

    def _plan(self, node: Filter) -> set[str] | None:
        if isinstance(node, And):
            return self._plan_and(node)
        if isinstance(node, Or):
            if not node.args:
                return set()
            parts = []
            for arg in node.args:
                s = self._plan(arg)
                if s is None:
                    return None
                parts.append(s)
            return set().union(*parts)
        if isinstance(node, Not):
            return None
        if isinstance(node, Text):
            text_index = self._texts.get(node.field)
            return None if text_index is None else text_index.lookup(node)
        if isinstance(node, Compare | In | FieldCheck):
            value_index = self._values.get(node.field)
            return None if value_index is None else value_index.lookup(node)
        return None
