"""Exponential back-off with full jitter, for reconnects and store retries."""

from __future__ import annotations

import random

__all__ = ["Backoff"]


class Backoff:
    """Delays that double from ``initial`` up to ``maximum``, each drawn uniformly
    from [initial, current] so that many clients do not retry in lockstep."""

    def __init__(
        self, initial: float = 0.5, maximum: float = 30.0, *, rng: random.Random | None = None
    ) -> None:
        if initial <= 0 or maximum < initial:
            raise ValueError("back-off needs 0 < initial <= maximum")
        self.initial = initial
        self.maximum = maximum
        self._current = initial
        self._rng = rng or random.Random()

    def next_delay(self) -> float:
        delay = self._rng.uniform(self.initial, self._current)
        self._current = min(self._current * 2, self.maximum)
        return delay

    def reset(self) -> None:
        self._current = self.initial
