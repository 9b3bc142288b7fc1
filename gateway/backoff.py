"""Exponential back-off with full jitter, shared by everything in the gateway that retries.

Attempt ``n`` waits ``uniform(0, min(cap, base * 2**n))`` seconds, never less than the floor;
``reset()`` after a success. The random source is injectable so tests can pin the delays.
The device drivers use it for reopening a port; the outbox for reconnecting to the broker
(capped low while events wait); the engine host for retrying a failing journal.
"""

from __future__ import annotations

import random


class Backoff:
    """Exponential back-off with full jitter: attempt n waits uniform(0, min(cap, base*2^n)),
    never less than ``floor``."""

    def __init__(self, base_s: float = 1.0, cap_s: float = 60.0, floor_s: float = 0.2,
                 rng: random.Random | None = None) -> None:
        self.base_s = base_s
        self.cap_s = cap_s
        self.floor_s = floor_s
        self.attempt = 0
        self._rng = rng or random.Random()

    def next_delay(self, cap_s: float | None = None) -> float:
        """The next delay; ``cap_s`` lowers the cap for this draw only."""
        cap = self.cap_s if cap_s is None else min(self.cap_s, cap_s)
        ceiling = min(cap, self.base_s * (2 ** min(self.attempt, 30)))
        self.attempt += 1
        return max(self.floor_s, self._rng.uniform(0, ceiling))

    def reset(self) -> None:
        self.attempt = 0
