"""The pseudo-terminal a ``hodei run -t`` job runs on, seen from the agent's side.

A program asks ``isatty()`` to decide whether to colour its output, to line-buffer it, to
prompt and edit lines: under Hodei it must get the same answers as in the user's own
terminal. So the job gets the slave side of a pty (POSIX ``openpty``) as stdin, stdout and
stderr and as its controlling terminal (it is a session leader; ``TIOCSCTTY``), which
also gives it job control, ``^C`` as SIGINT and SIGWINCH on resizes. The agent keeps the
master side: what the job writes is read from it, what the client types is written to it,
and the client's window size is set on it (``TIOCSWINSZ``, which signals the job).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import termios
from collections.abc import Callable, Sequence
from typing import Any

from hodei.domain import exitcodes
from hodei.domain.stdio import TerminalSize

__all__ = ["PseudoTerminal", "on_controlling_terminal"]

_DEFAULT_EOF = b"\x04"  # ^D, termios' VEOF unless the job changed it


# Run in the job's process between the new session and the job's own program: make the
# pty slave on stdin the controlling terminal (TIOCSCTTY), then exec the job in place (same
# pid). A ``preexec_fn`` cannot do this: it runs the interpreter's at-fork hooks in the
# child, and gRPC's (the agent is a gRPC client) abort a forked child.
_CONTROLLING_TERMINAL = f"""
import fcntl, os, sys, termios
fcntl.ioctl(0, termios.TIOCSCTTY, 0)
try:
    os.execvp(sys.argv[1], sys.argv[1:])
except OSError as exc:
    sys.stderr.write(f"{{sys.argv[1]}}: {{exc.strerror}}\\n")
    not_found = isinstance(exc, FileNotFoundError)
    sys.exit({exitcodes.COMMAND_NOT_FOUND} if not_found else {exitcodes.CANNOT_EXECUTE})
"""


def on_controlling_terminal(argv: Sequence[str]) -> list[str]:
    """``argv`` run by a short Python step that first takes the terminal on stdin as its
    controlling terminal; the job then replaces it (``exec``), keeping its pid."""
    return [sys.executable, "-I", "-S", "-c", _CONTROLLING_TERMINAL, *argv]


class _Reader(asyncio.Protocol):
    def __init__(self, on_data: Callable[[bytes], None], closed: asyncio.Event) -> None:
        self._on_data = on_data
        self._closed = closed

    def data_received(self, data: bytes) -> None:
        self._on_data(data)

    def connection_lost(self, exc: Exception | None) -> None:
        # Linux reports EIO on the master once every slave descriptor is closed: the
        # job and whatever it left behind are gone, which is the end of its output.
        self._closed.set()


class PseudoTerminal:
    """A pty pair sized ``size``; :attr:`slave` goes to the job, the rest stays here."""

    def __init__(self, size: TerminalSize) -> None:
        self.master, self.slave = os.openpty()
        self.resize(size)
        self.closed = asyncio.Event()
        self._reader: asyncio.ReadTransport | None = None
        self._writer: asyncio.WriteTransport | None = None

    def resize(self, size: TerminalSize) -> None:
        """Set the window size; the kernel sends SIGWINCH to the job's foreground group."""
        with contextlib.suppress(OSError):  # the job may be gone already
            termios.tcsetwinsize(self.master, (size.rows, size.columns))

    async def attach(self, on_output: Callable[[bytes], None]) -> None:
        """Once the job has started: close our copy of the slave and move the master's
        bytes to ``on_output`` until the job and its children have let go of the terminal."""
        os.close(self.slave)
        self.slave = -1
        loop = asyncio.get_running_loop()
        read_end = os.fdopen(os.dup(self.master), "rb", buffering=0)
        write_end = os.fdopen(os.dup(self.master), "wb", buffering=0)
        self._reader, _ = await loop.connect_read_pipe(
            lambda: _Reader(on_output, self.closed), read_end
        )
        self._writer, _ = await loop.connect_write_pipe(asyncio.Protocol, write_end)

    def write(self, data: bytes) -> None:
        """Type ``data`` into the terminal, as from a keyboard."""
        if self._writer is not None and not self._writer.is_closing():
            self._writer.write(data)

    def end_of_input(self) -> None:
        """The client's stdin ended: type the terminal's end-of-file character."""
        try:
            eof = termios.tcgetattr(self.master)[6][termios.VEOF]
        except (OSError, termios.error):
            eof = _DEFAULT_EOF
        self.write(eof if isinstance(eof, bytes) and eof else _DEFAULT_EOF)

    def pause(self) -> None:
        if self._reader is not None and not self._reader.is_closing():
            self._reader.pause_reading()

    def resume(self) -> None:
        if self._reader is not None and not self._reader.is_closing():
            self._reader.resume_reading()

    def close(self) -> None:
        """Release every descriptor (also while output may still be pending)."""
        for transport in (self._reader, self._writer):
            if transport is not None:
                transport.close()
        for fd in (self.master, self.slave):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.master = self.slave = -1

    def spawn_options(self) -> dict[str, Any]:
        """What ``subprocess_exec`` needs to start the job on this terminal."""
        return {
            "stdin": self.slave,
            "stdout": self.slave,
            "stderr": self.slave,
            "start_new_session": True,
        }
