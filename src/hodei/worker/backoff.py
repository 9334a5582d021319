"""Reconnect delays: exponential with full jitter, capped, restarting after a success.

Many workers lose the control plane at the same moment when it restarts; jitter keeps
them from reconnecting in lockstep. Pure: the random source is injectable.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator


def backoff_delays(
    *,
    initial: float = 0.05,
    factor: float = 2.0,
    maximum: float = 2.0,
    uniform: Callable[[float, float], float] = random.uniform,
) -> Iterator[float]:
    """Endless delays: the n-th is uniform in [ceiling/2, ceiling], ceiling = initial·factorⁿ."""
    ceiling = initial
    while True:
        yield uniform(ceiling / 2, ceiling)
        ceiling = min(ceiling * factor, maximum)
