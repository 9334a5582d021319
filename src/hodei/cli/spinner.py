"""A one-line spinner on stderr saying why a job still waits (only when stderr is a TTY).

It never writes to stdout, and writes nothing at all when stderr is a file or a pipe,
so scripts that capture stderr see only the job's own output and Hodei's messages.
The line is cut to the terminal's width, read again at every frame: a line that wrapped
could not be erased with ``\r``, and every frame would leave a copy on the screen.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from typing import TextIO

from hodei.cli import cells

_FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
_DEFAULT_COLUMNS = 80


def fit(text: str, columns: int) -> str:
    """``text`` on one line of at most ``columns - 1`` cells, cut with ``…`` if longer.

    The last column stays empty: writing into it makes some terminals wrap at once.
    """
    one_line = " ".join(text.split())  # a reason with newlines must not break the line
    return cells.clip(one_line, max(columns - 1, 1))


def terminal_columns(stream: TextIO) -> int:
    """The width of the terminal ``stream`` writes to; 80 when it cannot be known."""
    try:
        return os.get_terminal_size(stream.fileno()).columns or _DEFAULT_COLUMNS
    except (OSError, ValueError, AttributeError):
        return _DEFAULT_COLUMNS


class Spinner:
    """Call :meth:`show` with the waiting reason; :meth:`stop` before any output."""

    def __init__(
        self,
        stream: TextIO,
        *,
        enabled: bool,
        interval: float = 0.1,
        columns: Callable[[], int] | None = None,
    ) -> None:
        self._stream = stream
        self._columns = columns or (lambda: terminal_columns(stream))
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
                line = fit(f"{_FRAMES[frame % len(_FRAMES)]} {self._text}", self._columns())
                self._stream.write(f"\r\x1b[K{line}")
                self._stream.flush()
                self._drawn = True
            frame += 1
            await asyncio.sleep(self._interval)
