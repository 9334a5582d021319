"""Time as a value that is passed in, so code that waits or stamps can be tested without
waiting.

Everything in the control plane and the providers that reads the time or sleeps takes a
:class:`Clock`: the running system gets :data:`SYSTEM_CLOCK`; tests pass a clock they move
by hand (``tests/fixtures/clock.py``), so a 30-second grace period is crossed in one call
instead of 30 seconds of sleeping.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    """Wall time for records, monotonic time for durations, and sleeping."""

    def now(self) -> datetime:
        """The current time, timezone-aware UTC (for timestamps that are stored or shown)."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never jumps (for measuring durations)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Return after ``seconds`` of this clock's time."""
        ...


class SystemClock:
    """The real clock: ``datetime.now(UTC)``, ``time.monotonic`` and ``asyncio.sleep``."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


SYSTEM_CLOCK: Clock = SystemClock()
