"""atoma-actors: one shared, optimistic, fault-tolerant data store for threaded Python.

`create_client()` is the entry point. The runtime and client are imported on first use, so a
backend package that needs only `atoma_actors.protocol` and `atoma_actors.core` does not load
the actor runtime.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from .protocol.errors import (
    AdapterError,
    AtomaError,
    AuthError,
    BackendUnavailable,
    ClientClosed,
    ConflictError,
    InternalError,
    LimitsError,
    NotFoundError,
    ValidationError,
)

if TYPE_CHECKING:
    from .client import Client, Store, create_client

logging.getLogger("atoma_actors").addHandler(logging.NullHandler())

__version__ = "0.1.0"

__all__ = [
    "AdapterError",
    "AtomaError",
    "AuthError",
    "BackendUnavailable",
    "Client",
    "ClientClosed",
    "ConflictError",
    "InternalError",
    "LimitsError",
    "NotFoundError",
    "Store",
    "ValidationError",
    "create_client",
]

_LAZY = {"Client", "Store", "create_client"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from . import client

        return getattr(client, name)
    raise AttributeError(f"module 'atoma_actors' has no attribute {name!r}")
