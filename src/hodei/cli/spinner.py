"""A one-line spinner on stderr saying why a job still waits (only when stderr is a TTY).

It never writes to stdout, and writes nothing at all when stderr is a file or a pipe,
so scripts that capture stderr see only the job's own output and Hodei's messages.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TextIO

_FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


class Spinner:
    """Call :meth:`show` with the waiting reason; :meth:`stop` before any output."""

    def __init__(self, stream: TextIO, *, enabled: bool, interval: float = 0.1) -> None:
        self._stream = stream
        self._enabled = enabled
        self._interval = interval
        self._text = ""
        self._task: asyncio.Task[None] | None = None
        self._drawn = False
        self._stopped = False

    def show(self, text: str) -> None:
        if not self._enabled or self._stopped:
            return
        self._text = text
        if self._task is None:
            self._task = asyncio.create_task(self._spin())

    def stop(self) -> None:
        """Erase the line and never draw again."""
        self._stopped = True
        if self._task is not None:
            self._task.cancel()
            self._task = None
        if self._drawn:
            with contextlib.suppress(OSError, ValueError):
                self._stream.write("\r\x1b[K")
                self._stream.flush()
            self._drawn = False

    async def _spin(self) -> None:
        frame = 0
        while True:
            with contextlib.suppress(OSError, ValueError):
                self._stream.write(f"\r\x1b[K{_FRAMES[frame % len(_FRAMES)]} {self._text}")
                self._stream.flush()
                self._drawn = True
            frame += 1
            await asyncio.sleep(self._interval)
