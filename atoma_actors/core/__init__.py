"""Pure core: the query engine, indexes, write rules and in-memory storage. No actors, no I/O.

Must not import runtime, client or any backend.
"""

from .cursor import decode_cursor, encode_cursor
from .indexes import IndexSet
from .query import Query, QueryResult, evaluate, field_value, normalize_query

__all__ = [
    "IndexSet",
    "Query",
    "QueryResult",
    "decode_cursor",
    "encode_cursor",
    "evaluate",
    "field_value",
    "normalize_query",
]
