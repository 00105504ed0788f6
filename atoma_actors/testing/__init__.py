"""Helpers for users' own tests and simulation harnesses: `MockClock` (virtual time) and
`EventRecorder` (wait for events instead of sleeping).

Fault injection lives with the simulated server, `atoma_backend_memory.MemoryBackend.faults`.
"""

from atoma_actors.testing.clock import MockClock
from atoma_actors.testing.events import EventRecorder

__all__ = ["EventRecorder", "MockClock"]
