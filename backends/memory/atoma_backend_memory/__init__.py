"""atoma-backend-memory: a simulated Atoma server in memory, with seeded fault injection.

    from atoma_backend_memory import MemoryBackend
    server = MemoryBackend(seed=7)
    client = create_client(backend=server.backend)
    server.faults.configure(error_rate=0.1)     # retryable adapter errors on 10% of ops
    server.faults.crash_next(2)                 # the next two calls raise
    server.faults.hang(); server.faults.release()
    server.heal()                               # everything off

Depends only on `atoma_actors.protocol` and `atoma_actors.core`.
"""

from ._backend import BackendStats, MemoryBackend, memory_backend
from ._faults import (
    FaultInjector,
    FaultPlan,
    FaultStats,
    InjectedCrash,
    InjectedFault,
    InjectedHangReleased,
    InjectedLostReply,
    injected_error,
)

__all__ = [
    "BackendStats",
    "FaultInjector",
    "FaultPlan",
    "FaultStats",
    "InjectedCrash",
    "InjectedFault",
    "InjectedHangReleased",
    "InjectedLostReply",
    "MemoryBackend",
    "injected_error",
    "memory_backend",
]
