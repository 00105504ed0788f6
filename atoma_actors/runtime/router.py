"""The strategy table: which strategy actor serves a read or a write.

Resolution order: the call's own `strategy` option, then the store's, then the client default
(`direct` unless configured). The table is read on every request and changed rarely (a store's
strategy is set when the store is opened), so it is a plain object, not an actor: the sender
(a StoreActor, or the facade for reads) resolves the strategy and `tell`s it directly, which
saves one actor hop per request.
Must not import client or any backend.
"""

from __future__ import annotations

import threading
from typing import Any

import pykka

from atoma_actors.protocol.errors import ValidationError

from .messages import PersistBatch, PersistRequest, ReadRequest

__all__ = ["StrategyTable"]


class StrategyTable:
    """Strategy actors by name, the per-store choice and the default. Thread-safe: each
    change replaces the whole per-store dict (writers serialised by a lock), and readers
    only look up, without a lock."""

    def __init__(self, strategies: dict[str, pykka.ActorRef[Any]], default: str) -> None:
        self.strategies = dict(strategies)
        self.default = default
        self._per_store: dict[str, str] = {}
        self._writer = threading.Lock()

    def set_store(self, store: str, strategy: str | None) -> None:
        with self._writer:
            per_store = dict(self._per_store)
            if strategy is None:
                per_store.pop(store, None)
            else:
                per_store[store] = strategy
            self._per_store = per_store

    def resolve(self, store: str, strategy: str | None) -> str:
        return strategy or self._per_store.get(store) or self.default

    def route(self, message: PersistRequest | ReadRequest) -> None:
        """`tell` the message to its strategy (raises `pykka.ActorDeadError` once stopped)."""
        name = self.resolve(message.store, message.strategy)
        target = self.strategies.get(name)
        if target is None:
            message.reply(
                ValidationError(f"unknown strategy {name!r}; known: {sorted(self.strategies)}")
            )
            return
        target.tell(message)

    def route_many(self, requests: list[PersistRequest]) -> None:
        """Route persist requests in order, each run bound for one strategy as one message."""
        run: list[PersistRequest] = []
        target: pykka.ActorRef[Any] | None = None
        for request in requests:
            ref = self.strategies.get(self.resolve(request.store, request.strategy))
            if ref is None:
                self.route(request)  # answers the unknown strategy
                continue
            if ref is not target and run:
                _send(target, run)
                run = []
            target = ref
            run.append(request)
        if run:
            _send(target, run)


def _send(target: pykka.ActorRef[Any] | None, run: list[PersistRequest]) -> None:
    assert target is not None
    target.tell(run[0] if len(run) == 1 else PersistBatch(tuple(run)))
