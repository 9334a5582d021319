"""A "look again" signal from the parts that change things to the loop that acts on them.

The scheduler must run a pass whenever a job arrives or a worker slot frees up, and the
parts that notice (the controller, the submit path, startup) must not know the scheduler.
They share one :class:`Wakeup` made by the composition root instead: setters never block
and never lose a signal, because the waiter clears it before it looks.
"""

from __future__ import annotations

import asyncio


class Wakeup:
    """Level-triggered: any number of :meth:`set` calls before a :meth:`wait` wake it once."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def set(self) -> None:
        """Ask for another pass (a job arrived, capacity may have freed up)."""
        self._event.set()

    async def wait(self) -> None:
        """Return once a pass is wanted; the request is consumed."""
        await self._event.wait()
        self._event.clear()
