"""Pure core: the query engine, indexes, write rules and in-memory storage. No actors, no I/O.

Must not import runtime, client or any backend.
"""
