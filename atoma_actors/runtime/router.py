"""The StrategyRouter actor: which strategy serves a read or a write.

Resolution order: the call's own `strategy` option, then the store's, then the client default
(`direct` unless configured). It owns only that table and forwards with `tell`.
Must not import client or any backend.
"""

from __future__ import annotations

from typing import Any

import pykka

from atoma_actors.protocol.errors import ValidationError

from .messages import PersistRequest, ReadRequest, SetStoreStrategy
from .reply import Reply

__all__ = ["SetStoreStrategy", "StrategyRouter"]


class StrategyRouter(pykka.ThreadingActor):
    def __init__(self, strategies: dict[str, pykka.ActorRef[Any]], default: str) -> None:
        super().__init__()
        self._strategies = strategies
        self._default = default
        self._per_store: dict[str, str] = {}

    def on_receive(self, message: Any) -> None:
        if isinstance(message, PersistRequest | ReadRequest):
            self._route(message)
        elif isinstance(message, SetStoreStrategy):
            if message.strategy is None:
                self._per_store.pop(message.store, None)
            else:
                self._per_store[message.store] = message.strategy

    def _route(self, message: PersistRequest | ReadRequest) -> None:
        name = message.strategy or self._per_store.get(message.store) or self._default
        target = self._strategies.get(name)
        if target is None:
            reply: Reply[Any] = message.reply
            reply(ValidationError(f"unknown strategy {name!r}; known: {sorted(self._strategies)}"))
            return
        target.tell(message)
