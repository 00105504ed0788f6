"""Fixtures for runtime tests: every test must leave no pykka actor running."""

from __future__ import annotations

from collections.abc import Iterator

import pykka
import pytest
from atoma_backend_memory import MemoryBackend

from atoma_actors import Client, create_client
from atoma_actors.runtime.supervisor import SupervisorPolicy


@pytest.fixture(autouse=True)
def no_leaked_actors() -> Iterator[None]:
    yield
    leaked = pykka.ActorRegistry.get_all()
    pykka.ActorRegistry.stop_all(block=False)
    assert leaked == [], f"actors left running: {leaked}"


@pytest.fixture
def memory() -> MemoryBackend:
    return MemoryBackend(seed=7)


@pytest.fixture
def fast_policy() -> SupervisorPolicy:
    return SupervisorPolicy(
        backoff_base=0.001, backoff_max=0.01, max_failures=1000, window=1.0, circuit_reset=0.01
    )


@pytest.fixture(params=["local", "memory"])
def client(request: pytest.FixtureRequest, memory: MemoryBackend) -> Iterator[Client]:
    """The same behaviour is expected with no backend and with the memory backend."""
    backend = None if request.param == "local" else memory.backend
    with create_client(backend, timeout=10) as c:
        yield c
