"""How long to wait before retrying a command whose append lost a race."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter.

    Before retry ``n`` (1-based) the wait is uniform in
    ``[0, min(cap, base * 2 ** (n - 1))]`` seconds: racing writers spread
    out instead of colliding again in lock-step.
    """

    base: float = 0.002
    cap: float = 0.1

    def delay(self, retry: int, rng: random.Random | None = None) -> float:
        ceiling = min(self.cap, self.base * 2 ** max(retry - 1, 0))
        return (rng or _RNG).uniform(0.0, ceiling)


_RNG = random.Random()
