"""A job's standard input and terminal, as the client feeds them while the job runs.

``hodei run -i`` streams the client's stdin to the job, ending with EOF, as ``docker run
-i`` does; ``-t`` runs the job on a pseudo-terminal whose size follows the client's
window. Both travel as one ordered stream of :class:`JobInput` items from the client
through the control plane to the worker agent, so a resize lands between the very bytes
typed before and after it.
"""

from __future__ import annotations

from dataclasses import dataclass

from hodei.domain.ids import JobId

__all__ = ["MAX_TERMINAL_CELLS", "JobInput", "TerminalSize", "TerminalSizeError"]

# struct winsize holds unsigned shorts (POSIX termios, TIOCSWINSZ).
MAX_TERMINAL_CELLS = 65535


class TerminalSizeError(ValueError):
    """A terminal size outside what a pseudo-terminal can have."""


@dataclass(frozen=True)
class TerminalSize:
    """A terminal's size in character cells."""

    rows: int
    columns: int

    def __post_init__(self) -> None:
        for name in ("rows", "columns"):
            value = getattr(self, name)
            if not (isinstance(value, int) and 1 <= value <= MAX_TERMINAL_CELLS):
                raise TerminalSizeError(
                    f"tty_size.{name}: {value!r}; a whole number from 1 to {MAX_TERMINAL_CELLS}"
                )


@dataclass(frozen=True)
class JobInput:
    """One item of a job's input stream: stdin bytes, then possibly their end (``eof``),
    or a terminal resize (``resize``)."""

    job_id: JobId
    data: bytes = b""
    eof: bool = False
    resize: TerminalSize | None = None
