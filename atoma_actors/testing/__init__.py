"""Helpers for users' own tests and simulation harnesses: `MockClock` (virtual time).

Fault injection lives with the simulated server, `atoma_backend_memory.MemoryBackend.faults`.
"""

from atoma_actors.testing.clock import MockClock

__all__ = ["MockClock"]
