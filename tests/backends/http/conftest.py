"""Fixtures for the HTTP backend tests: a storage served by a real uvicorn server on a
loopback port, and HttpBackends that are closed when the test ends."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from atoma_backend_http import Backoff, HttpBackend
from atoma_server import create_app
from atoma_server.testing import ServerThread

from atoma_actors.core.storage import MemoryStorage

FAST = Backoff(base=0.01, cap=0.05)


@pytest.fixture
def storage() -> MemoryStorage:
    return MemoryStorage()


@pytest.fixture
def serve() -> Iterator[Callable[..., ServerThread]]:
    """`serve(storage, port=0, **create_app_kwargs)` -> a started server, stopped after."""
    started: list[ServerThread] = []

    def start(storage: Any, *, port: int = 0, **kwargs: Any) -> ServerThread:
        kwargs.setdefault("heartbeat", 0.2)
        kwargs.setdefault("retry_ms", 50)
        server = ServerThread(create_app(storage, **kwargs), port=port).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def server(serve, storage) -> ServerThread:
    return serve(storage)


@pytest.fixture
def connect() -> Iterator[Callable[..., HttpBackend]]:
    """`connect(url, **kwargs)` -> an HttpBackend with fast backoff, closed after the test."""
    made: list[HttpBackend] = []

    def make(url: str, **kwargs: Any) -> HttpBackend:
        kwargs.setdefault("backoff", FAST)
        kwargs.setdefault("timeout", 5.0)
        backend = HttpBackend(url, **kwargs)
        made.append(backend)
        return backend

    yield make
    for backend in made:
        backend.close()
