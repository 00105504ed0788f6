"""Field lookup and value kinds shared by filters, sorting and indexes.

`field_value(entity, field)` is the one lookup rule of the query engine: the entity's own key
first (a key may contain dots), else a dotted path through nested mappings. Value kinds keep
Python from adding coercion the reference engine does not have: `True` is not a number, strings
and numbers never compare. Must not import anything from atoma_actors outside `core` and
`protocol`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Final

__all__ = [
    "MISSING",
    "field_getter",
    "field_value",
    "is_number",
    "is_scalar",
]


class _Missing:
    """The value of a field that is not there (distinct from an explicit null)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Final[Any] = _Missing()

_LOOKUP_ERRORS = (KeyError, TypeError, IndexError, AttributeError)


def _walk(entity: Any, parts: list[str]) -> Any:
    cur = entity
    for part in parts:
        # Only mappings are walked: `"abc"["x"]` or a list index would be a coercion.
        if not hasattr(cur, "keys"):
            return MISSING
        try:
            cur = cur[part]
        except _LOOKUP_ERRORS:
            return MISSING
    return cur


def field_getter(field: str) -> Callable[[Any], Any]:
    """A fast accessor for `field`: returns the value, or `MISSING` when it is not there."""
    if "." not in field:

        def get(entity: Any, _f: str = field, _m: Any = MISSING) -> Any:
            return entity.get(_f, _m)

        return get

    parts = field.split(".")

    def get_dotted(entity: Any, _f: str = field, _m: Any = MISSING) -> Any:
        value = entity.get(_f, _m)
        if value is _m:
            return _walk(entity, parts)
        return value

    return get_dotted


def field_value(entity: Any, field: str) -> tuple[bool, Any]:
    """`(present, value)` of `field` in `entity`: own key first, else the dotted path."""
    value = field_getter(field)(entity)
    if value is MISSING:
        return False, None
    return True, value


def is_number(value: Any) -> bool:
    """A JSON number: an int or a float, never a bool."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def is_scalar(value: Any) -> bool:
    """A value `eq`/`in` may compare against: null, bool, finite number or string."""
    if value is None or isinstance(value, bool | str):
        return True
    if isinstance(value, int):
        return True
    return isinstance(value, float) and math.isfinite(value)
