"""The client: `create_client`, the `Client`, and the store facade. Must not import sync."""

from .client import Client, create_client
from .store import NowaitStore, Store

__all__ = ["Client", "NowaitStore", "Store", "create_client"]
