"""Fixtures for the ops server tests: a storage, and real uvicorn servers on loopback ports
that each test starts (via the `serve` factory) and that are stopped when the test ends."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from atoma_server import create_app
from atoma_server.testing import ServerThread

from atoma_actors.core.storage import MemoryStorage


@pytest.fixture
def storage() -> MemoryStorage:
    return MemoryStorage()


@pytest.fixture
def serve() -> Iterator[Callable[..., ServerThread]]:
    """`serve(app)` or `serve(storage, **create_app_kwargs)` -> a started ServerThread."""
    started: list[ServerThread] = []

    def start(target: Any, **kwargs: Any) -> ServerThread:
        app = target if callable(target) and not hasattr(target, "execute_ops") else None
        if app is None:
            kwargs.setdefault("heartbeat", 0.2)
            app = create_app(target, **kwargs)
        server = ServerThread(app).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as client:
        yield client
