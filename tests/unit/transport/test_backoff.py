from __future__ import annotations

import random

import pytest

from msgbus.transport.backoff import Backoff


def test_delays_grow_to_the_maximum_and_stay_within_bounds() -> None:
    backoff = Backoff(0.5, 8.0, rng=random.Random(1))
    delays = [backoff.next_delay() for _ in range(20)]
    assert all(0.5 <= d <= 8.0 for d in delays)
    # Full jitter: later draws come from a wider range, so some exceed the first ceiling.
    assert max(delays[5:]) > 1.0


def test_reset_starts_over() -> None:
    backoff = Backoff(1.0, 100.0, rng=random.Random(2))
    for _ in range(10):
        backoff.next_delay()
    backoff.reset()
    assert backoff.next_delay() == 1.0  # uniform(1, 1)


def test_invalid_bounds() -> None:
    with pytest.raises(ValueError):
        Backoff(0, 1)
    with pytest.raises(ValueError):
        Backoff(2, 1)
