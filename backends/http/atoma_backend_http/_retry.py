"""Backoff between retries: exponential with jitter, capped, never past a deadline.

Imports nothing from atoma_actors.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["Backoff"]


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delay before retry number `attempt` (0-based): `base * factor**attempt`, capped at
    `cap`, scaled by a random factor in [1 - jitter, 1] so many clients do not retry in step."""

    base: float = 0.05
    factor: float = 2.0
    cap: float = 2.0
    jitter: float = 0.5

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        raw = min(self.cap, self.base * self.factor ** max(0, attempt))
        r = (rng or random).random()
        return raw * (1.0 - self.jitter * r)
