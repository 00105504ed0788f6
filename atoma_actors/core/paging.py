"""Page specs: validation of offset and cursor pages, and cutting a page out of matches.

Offset pages clamp like the reference engine (floor non-integers, negatives become 0, a
missing offset is 0, a missing limit means "the rest"); cursor pages default to 50 items and
carry one cursor per page (the last item going forward, the first with `before`). A token is
decoded while the query is normalized, so a bad one fails before any work. Must not import
anything from atoma_actors outside `core` and `protocol`.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from atoma_actors.protocol.errors import ValidationError
from atoma_actors.protocol.results import PageInfo

from .cursor import decode_cursor, encode_cursor
from .fields import is_number
from .sorting import SortRule, narrow_to_first, sort_keys, sort_values

__all__ = [
    "DEFAULT_CURSOR_LIMIT",
    "CursorPage",
    "OffsetPage",
    "Page",
    "cut_page",
    "normalize_page",
    "page_to_wire",
]

DEFAULT_CURSOR_LIMIT = 50


@dataclass(frozen=True, slots=True)
class OffsetPage:
    """`limit` None means no limit (everything from `offset`)."""

    offset: int = 0
    limit: int | None = None
    include_total: bool = False
    mode: str = "offset"


@dataclass(frozen=True, slots=True)
class CursorPage:
    """`values` are the decoded sort values of the `after` or `before` token (None: first page)."""

    limit: int = DEFAULT_CURSOR_LIMIT
    after: str | None = None
    before: str | None = None
    values: tuple[Any, ...] | None = None
    include_total: bool = False
    mode: str = "cursor"


Page = OffsetPage | CursorPage

_OFFSET_KEYS = frozenset({"mode", "limit", "offset", "includeTotal"})
_CURSOR_KEYS = frozenset({"mode", "limit", "after", "before", "includeTotal"})


def _fail(message: str) -> ValidationError:
    return ValidationError(f"invalid query: {message}", code="INVALID_QUERY")


def _clamp(name: str, value: Any) -> int | None:
    """The reference engine's `Math.max(0, Math.floor(x))`; non-finite counts as absent."""
    if value is None:
        return None
    if not is_number(value):
        raise _fail(f"page.{name} must be a number, got {type(value).__name__} {value!r}"[:160])
    if not math.isfinite(value):
        return None
    return max(0, math.floor(value))


def normalize_page(raw: Any, sort: tuple[SortRule, ...]) -> Page | None:
    """Validate a wire page spec against the query's (normalized) sort rules."""
    if raw is None or isinstance(raw, OffsetPage):
        return raw
    if isinstance(raw, CursorPage):
        if raw.values is None and (raw.after or raw.before):
            return normalize_page(_cursor_to_wire(raw), sort)
        return raw
    if not isinstance(raw, Mapping):
        raise _fail(f"page must be an object, got {type(raw).__name__}")
    mode = raw.get("mode")
    if mode is None:
        mode = "cursor" if ("after" in raw or "before" in raw) else "offset"
    if mode not in ("offset", "cursor"):
        raise _fail(f"page.mode must be 'offset' or 'cursor', got {mode!r}"[:160])
    allowed = _OFFSET_KEYS if mode == "offset" else _CURSOR_KEYS
    extra = set(raw) - allowed
    if extra:
        raise _fail(f"page ({mode}): unexpected key(s) {sorted(map(str, extra))}")
    include_total = raw.get("includeTotal", False)
    if include_total is None:
        include_total = False
    if not isinstance(include_total, bool):
        raise _fail(f"page.includeTotal must be a boolean, got {include_total!r}"[:160])
    limit = _clamp("limit", raw.get("limit"))

    if mode == "offset":
        offset = _clamp("offset", raw.get("offset")) or 0
        return OffsetPage(offset=offset, limit=limit, include_total=include_total)

    after, before = raw.get("after"), raw.get("before")
    for name, token in (("after", after), ("before", before)):
        if token is not None and not isinstance(token, str):
            raise _fail(f"page.{name} must be a cursor string, got {type(token).__name__}")
    if after is not None and before is not None:
        raise _fail("page: give 'after' or 'before', not both")
    token = after if after is not None else before
    values = None if token is None else tuple(decode_cursor(token, sort))
    return CursorPage(
        limit=DEFAULT_CURSOR_LIMIT if limit is None else limit,
        after=after,
        before=before,
        values=values,
        include_total=include_total,
    )


def _cursor_to_wire(page: CursorPage) -> dict[str, Any]:
    out: dict[str, Any] = {"mode": "cursor", "limit": page.limit}
    if page.after is not None:
        out["after"] = page.after
    if page.before is not None:
        out["before"] = page.before
    if page.include_total:
        out["includeTotal"] = True
    return out


def page_to_wire(page: Page | None) -> dict[str, Any] | None:
    if page is None:
        return None
    if isinstance(page, CursorPage):
        return _cursor_to_wire(page)
    out: dict[str, Any] = {"mode": "offset", "offset": page.offset}
    if page.limit is not None:
        out["limit"] = page.limit
    if page.include_total:
        out["includeTotal"] = True
    return out


# Below this fraction of the matches, a bounded heap beats a full sort.
_HEAP_FRACTION = 0.125


def _smallest(items: list[Any], keys: list[tuple], k: int) -> list[Any]:
    """The `k` items with the smallest keys, in key order."""
    n = len(items)
    if k <= 0:
        return []
    if k < n * _HEAP_FRACTION:
        idx = heapq.nsmallest(k, range(n), key=keys.__getitem__)
    else:
        idx = sorted(range(n), key=keys.__getitem__)[:k]
    return [items[i] for i in idx]


def _largest_ascending(items: list[Any], keys: list[tuple], k: int) -> list[Any]:
    """The `k` items with the largest keys, in ascending key order."""
    n = len(items)
    if k <= 0:
        return []
    if k < n * _HEAP_FRACTION:
        idx = heapq.nlargest(k, range(n), key=keys.__getitem__)
        idx.reverse()
    else:
        idx = sorted(range(n), key=keys.__getitem__)[max(0, n - k) :]
    return [items[i] for i in idx]


def _first_page_end(page: Page | None) -> int | None:
    """How many of the smallest keys a page needs, when it is a prefix of the order."""
    if isinstance(page, OffsetPage):
        return None if page.limit is None else page.offset + page.limit
    if isinstance(page, CursorPage) and page.values is None:
        return page.limit
    return None


def cut_page(
    matches: list[Any], sort: tuple[SortRule, ...], page: Page | None
) -> tuple[list[Any], PageInfo]:
    """Sort `matches` (all entities passing the filter) and cut the page asked for."""
    n = len(matches)
    end = _first_page_end(page)
    if end is not None and end < n:
        # Only entities whose first sort value is within the first `end` can be on the
        # page: narrow to those before building whole keys (ties on it included).
        matches = narrow_to_first(matches, sort, end)
    probe = list(page.values) if isinstance(page, CursorPage) and page.values else None
    keys, bound = sort_keys(matches, sort, probe)
    if page is None:
        return _smallest(matches, keys, n), PageInfo(has_next=False)

    total = n if page.include_total else None
    if isinstance(page, OffsetPage):
        if end is None:
            data = _smallest(matches, keys, n)[page.offset :]
            return data, PageInfo(has_next=False, total=total)
        data = _smallest(matches, keys, min(end, len(matches)))[page.offset :]
        return data, PageInfo(has_next=end < n, total=total)

    limit = page.limit
    if page.values is None:
        data = _smallest(matches, keys, min(limit, len(matches)))
        has_next = limit < n
    else:
        assert bound is not None  # a cursor page with values always has a probe key
        if page.after is not None:
            rest = [i for i, k in enumerate(keys) if k > bound]
        else:
            rest = [i for i, k in enumerate(keys) if k < bound]
        items = [matches[i] for i in rest]
        rest_keys = [keys[i] for i in rest]
        if page.after is not None:
            data = _smallest(items, rest_keys, min(limit, len(items)))
        else:
            data = _largest_ascending(items, rest_keys, min(limit, len(items)))
        has_next = len(items) > len(data)
    cursor = None
    if data:
        edge = data[-1] if page.before is None else data[0]
        cursor = encode_cursor(sort, sort_values(edge, sort))
    return data, PageInfo(has_next=has_next, total=total, cursor=cursor)
