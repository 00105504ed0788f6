"""The query engine: `normalize_query` validates a query once, `evaluate` runs it.

`evaluate(entities, query)` filters, sorts and pages a collection of entity dicts exactly as
DESIGN §4 says (see `filters`, `sorting`, `paging` for the rules), optionally narrowed by an
`IndexSet`. It never mutates its inputs and returns the stored dicts themselves (callers copy).
An invalid query raises `ValidationError` before any work, so there is never a partial result.
Must not import anything from atoma_actors outside `core` and `protocol`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from atoma_actors.protocol.errors import ValidationError
from atoma_actors.protocol.results import PageInfo

from .fields import field_value
from .filters import Filter, compile_scan, filter_to_dict, normalize_filter
from .paging import CursorPage, OffsetPage, Page, cut_page, normalize_page, page_to_wire
from .sorting import SortRule, normalize_sort, sort_rules_to_wire

if TYPE_CHECKING:
    from .indexes import IndexSet

__all__ = [
    "CursorPage",
    "OffsetPage",
    "Query",
    "QueryResult",
    "evaluate",
    "field_value",
    "normalize_query",
]

_QUERY_KEYS = frozenset({"filter", "sort", "page"})


@dataclass(frozen=True, slots=True)
class Query:
    """A validated query. `sort` ends with the `id` tie-breaker; `page` None means everything."""

    filter: Filter | None = None
    sort: tuple[SortRule, ...] = (("id", "asc"),)
    page: Page | None = None

    def to_wire(self) -> dict[str, Any]:
        """The wire dict of this query (upstream shape, camelCase page keys)."""
        out: dict[str, Any] = {"sort": sort_rules_to_wire(self.sort)}
        if self.filter is not None:
            out["filter"] = filter_to_dict(self.filter)
        page = page_to_wire(self.page)
        if page is not None:
            out["page"] = page
        return out


@dataclass(frozen=True, slots=True)
class QueryResult:
    data: list[dict[str, Any]]
    page_info: PageInfo = field(default_factory=lambda: PageInfo(has_next=False))
    source: str = "local"


def normalize_query(query: Mapping[str, Any] | Query | None) -> Query:
    """Validate and normalize a query dict `{filter, sort, page}` (all optional)."""
    if isinstance(query, Query):
        return query
    if query is None:
        return Query()
    if hasattr(query, "model_dump") and not isinstance(query, Mapping):
        query = query.model_dump(by_alias=True, exclude_none=True)
    if not isinstance(query, Mapping):
        raise ValidationError(
            f"invalid query: expected an object {{filter, sort, page}}, got {type(query).__name__}",
            code="INVALID_QUERY",
        )
    extra = set(query) - _QUERY_KEYS
    if extra:
        raise ValidationError(
            f"invalid query: unexpected key(s) {sorted(map(str, extra))} "
            "(expected filter, sort, page)",
            code="INVALID_QUERY",
        )
    sort = normalize_sort(query.get("sort"))
    return Query(
        filter=normalize_filter(query.get("filter")),
        sort=sort,
        page=normalize_page(query.get("page"), sort),
    )


def evaluate(
    entities: Mapping[str, dict] | Iterable[dict],
    query: Mapping[str, Any] | Query | None,
    *,
    indexes: IndexSet | None = None,
    candidates: set[str] | None = None,
) -> QueryResult:
    """Run `query` over `entities` (id -> entity mapping, or any iterable of entities).

    `candidates` (ids already narrowed by an index) restricts the scan of a mapping; with
    `indexes`, the planner is asked too. Candidates only narrow: the full filter still runs.
    """
    q = normalize_query(query)
    scan = compile_scan(q.filter)

    # Explicit candidates always restrict; planned ones are a superset of the matches, so a
    # full scan is equally right and cheaper when they cover most of the store.
    restrict = candidates is not None
    if indexes is not None:
        planned = indexes.candidates(q)
        if planned is not None:
            candidates = planned if candidates is None else (candidates & planned)

    if isinstance(entities, Mapping):
        if candidates is not None and (restrict or len(candidates) < len(entities)):
            get = entities.get
            source: Iterable[Any] = [e for e in map(get, candidates) if e is not None]
        else:
            source = entities.values()
    elif candidates is not None:
        source = [e for e in entities if e.get("id") in candidates]
    else:
        source = entities

    data, page_info = cut_page(scan(source), q.sort, q.page)
    return QueryResult(data=data, page_info=page_info)
