"""Sort rules: validation, and one composite key per entity that encodes the whole order.

Order per rule: null and missing last in both directions; among other values numbers come
before strings, strings before booleans, and anything else (lists, objects, NaN) last and
equal to each other; strings compare by code point. `id asc` is appended as the final
tie-breaker unless `id` is already a rule. `sort_keys` builds one key tuple per entity,
column by column, so one C-level sort decides (no `cmp_to_key`); a descending column is
encoded by negation or by dense ranks, so mixed directions still sort in one pass.
Must not import anything from atoma_actors outside `core` and `protocol`.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping
from math import isnan
from operator import neg
from typing import Any, Literal

from atoma_actors.protocol.errors import ValidationError

from .fields import MISSING, field_getter

__all__ = [
    "SortRule",
    "narrow_to_first",
    "normalize_sort",
    "sort_keys",
    "sort_rules_to_wire",
    "sort_values",
]

SortRule = tuple[str, Literal["asc", "desc"]]

_NULL = (1, 0, 0)
_RANK_NUMBER, _RANK_STRING, _RANK_BOOL, _RANK_OTHER = 0, 1, 2, 3


def _fail(message: str) -> ValidationError:
    return ValidationError(f"invalid query: {message}", code="INVALID_QUERY")


def normalize_sort(raw: Any) -> tuple[SortRule, ...]:
    """Validate `[{field, dir}]` and append the `id asc` tie-breaker."""
    if raw is None:
        raw = []
    if isinstance(raw, tuple) and all(isinstance(r, tuple) for r in raw):
        raw = [{"field": f, "dir": d} for f, d in raw]
    if not isinstance(raw, list | tuple):
        raise _fail(f"sort must be a list of {{field, dir}}, got {type(raw).__name__}")
    rules: list[SortRule] = []
    for i, rule in enumerate(raw):
        if not isinstance(rule, Mapping):
            raise _fail(f"sort[{i}] must be an object {{field, dir}}, got {rule!r}"[:160])
        extra = set(rule) - {"field", "dir"}
        if extra:
            raise _fail(f"sort[{i}]: unexpected key(s) {sorted(map(str, extra))}")
        field = rule.get("field")
        if not isinstance(field, str) or not field:
            raise _fail(f"sort[{i}].field must be a non-empty string, got {field!r}"[:160])
        direction = rule.get("dir")
        if direction not in ("asc", "desc"):
            raise _fail(f"sort[{i}].dir must be 'asc' or 'desc', got {direction!r}"[:160])
        rules.append((field, direction))
    if not any(field == "id" for field, _ in rules):
        rules.append(("id", "asc"))
    return tuple(rules)


def sort_rules_to_wire(rules: tuple[SortRule, ...]) -> list[dict[str, str]]:
    return [{"field": f, "dir": d} for f, d in rules]


def _asc(v: Any) -> tuple:
    cls = v.__class__
    if cls is str:
        return (0, _RANK_STRING, v)
    if cls is int:
        return (0, _RANK_NUMBER, v)
    if v is None or v is MISSING:
        return _NULL
    if cls is float:
        return (0, _RANK_NUMBER, v) if not isnan(v) else (0, _RANK_OTHER, 0)
    if cls is bool:
        return (0, _RANK_BOOL, v)
    return _asc_slow(v)


def _asc_slow(v: Any) -> tuple:
    if isinstance(v, bool):
        return (0, _RANK_BOOL, bool(v))
    if isinstance(v, int):
        return (0, _RANK_NUMBER, int(v))
    if isinstance(v, float):
        return (0, _RANK_NUMBER, float(v)) if not isnan(v) else (0, _RANK_OTHER, 0)
    if isinstance(v, str):
        return (0, _RANK_STRING, str(v))
    return (0, _RANK_OTHER, 0)


def _column(values: list[Any], direction: str) -> list[Any]:
    """Comparable components for one rule's column of values (same encoding for all)."""
    kinds = set(map(type, values))
    if kinds == {str}:
        if direction == "asc":
            return values
        return _descending_ranks(values)
    if kinds and kinds <= _NUMBER_KINDS and not (float in kinds and any(map(isnan, values))):
        return values if direction == "asc" else list(map(neg, values))
    # Mixed kinds, nulls or odd values: the general (null flag, kind rank, value) encoding.
    wrapped = list(map(_asc, values))
    if direction == "asc":
        return wrapped
    ranks = _descending_ranks(wrapped)
    # Nulls keep their flag so they stay last when the order is reversed.
    return [(w[0], r) for w, r in zip(wrapped, ranks, strict=True)]


def _descending_ranks(values: list[Any]) -> list[int]:
    # Ranking the distinct values reverses any total order in one C-level sort, instead of
    # building an inverted copy of every string.
    rank = {v: -i for i, v in enumerate(sorted(set(values)))}
    return list(map(rank.__getitem__, values))


_NUMBER_KINDS = frozenset({int, float})


def sort_keys(
    entities: list[Any], rules: tuple[SortRule, ...], probe: list[Any] | None = None
) -> tuple[list[tuple], tuple | None]:
    """One key tuple per entity ordering them under `rules`, and the key of `probe`.

    `probe` (the sort values a cursor carries) is encoded with its column, so the two keys
    compare exactly as the entities they stand for would.
    """
    columns = []
    for i, (field, direction) in enumerate(rules):
        if "." in field:
            get = field_getter(field)
            values = list(map(get, entities))
        else:
            values = [e.get(field, MISSING) for e in entities]
        if probe is not None:
            values.append(probe[i])
        columns.append(_column(values, direction))
    keys = list(zip(*columns, strict=True)) if columns else [() for _ in entities]
    if probe is None:
        return keys, None
    return keys[:-1], keys[-1]


def narrow_to_first(entities: list[Any], rules: tuple[SortRule, ...], k: int) -> list[Any]:
    """The entities that can be among the first `k` under `rules`: those whose first sort
    value is no worse than the `k`-th best first value (ties included), in their order.

    Only when that column is of one plain kind (all numbers, or all strings) and `k` is a
    small part of the whole; otherwise `entities` unchanged. Building whole keys for the
    survivors alone is what makes a first page cheap on a large store."""
    if k <= 0:
        return []
    if k * 4 > len(entities) or not rules:
        return entities
    field, direction = rules[0]
    if "." in field:
        values = list(map(field_getter(field), entities))
    else:
        values = [e.get(field, MISSING) for e in entities]
    kinds = set(map(type, values))
    if kinds != {str} and not (
        kinds and kinds <= _NUMBER_KINDS and not (float in kinds and any(map(isnan, values)))
    ):
        return entities
    if direction == "asc":
        bound = heapq.nsmallest(k, values)[-1]
        return [e for e, v in zip(entities, values, strict=True) if v <= bound]
    bound = heapq.nlargest(k, values)[-1]
    return [e for e, v in zip(entities, values, strict=True) if v >= bound]


def sort_values(entity: Any, rules: tuple[SortRule, ...]) -> list[Any]:
    """The values a cursor carries for `entity` (missing becomes null)."""
    out = []
    for field, _ in rules:
        v = field_getter(field)(entity)
        out.append(None if v is MISSING else v)
    return out
