"""The client's side of ``hodei run -i``/``-t``: reading stdin, raw mode, window sizes.

With ``-i`` the command's stdin is read as it arrives (a pipe, a file, a terminal) and
streamed to the job, its end included, as ``docker run -i`` does. With ``-t`` as well and
a terminal on stdin, that terminal is put in raw mode for the job's duration, so every key
(``^C`` and ``^D`` included) reaches the job's own pseudo-terminal, which does the
echoing, line editing and signalling; the window size follows on every SIGWINCH. Mode
changes are undone whatever ends the command.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import termios
import threading
import tty
from collections.abc import AsyncIterator, Iterator
from typing import Any

from hodei.domain.ids import JobId
from hodei.domain.stdio import JobInput, TerminalSize, TerminalSizeError

__all__ = ["CHUNK_BYTES", "input_stream", "raw_mode", "terminal_size"]

CHUNK_BYTES = 64 * 1024  # one read of stdin, one message
_QUEUED_CHUNKS = 16  # read ahead at most this much before the job has taken it


def terminal_size(*fds: int) -> TerminalSize | None:
    """The window size of the first of ``fds`` that is a terminal, else None."""
    for fd in fds:
        with contextlib.suppress(OSError, TerminalSizeError):
            if os.isatty(fd):
                size = os.get_terminal_size(fd)
                return TerminalSize(rows=size.lines, columns=size.columns)
    return None


@contextlib.contextmanager
def raw_mode(fd: int) -> Iterator[None]:
    """Put the terminal on ``fd`` in raw mode (POSIX termios, as ``cfmakeraw``) and
    restore its settings on the way out; nothing happens if ``fd`` is no terminal."""
    try:
        saved = termios.tcgetattr(fd)
    except (OSError, termios.error):
        yield
        return
    tty.setraw(fd, termios.TCSADRAIN)
    try:
        yield
    finally:
        with contextlib.suppress(OSError, termios.error):
            termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def _read_stdin(
    fd: int, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[JobInput], job: JobId
) -> None:
    """In a daemon thread: a blocking read works on every kind of stdin (regular files
    cannot be watched by epoll), and a thread left blocked on a terminal read does not
    keep the process from exiting."""
    try:
        while True:
            try:
                data = os.read(fd, CHUNK_BYTES)
            except OSError:
                data = b""
            item = JobInput(job, data=data, eof=not data)
            asyncio.run_coroutine_threadsafe(queue.put(item), loop).result()
            if not data:
                return
    except (RuntimeError, asyncio.CancelledError):  # the loop has closed: we are exiting
        return


async def input_stream(
    job: JobId, *, stdin_fd: int | None, resize_fd: int | None
) -> AsyncIterator[JobInput]:
    """The job's input: chunks of ``stdin_fd`` then its end (when given), and the size of
    the terminal on ``resize_fd`` whenever it changes (when given). Ends after EOF if
    there is no terminal to follow; otherwise it runs until cancelled. A resize never
    waits behind stdin that the job has not taken yet."""
    loop = asyncio.get_running_loop()
    chunks: asyncio.Queue[JobInput] = asyncio.Queue(_QUEUED_CHUNKS)
    resized = asyncio.Event()
    if stdin_fd is not None:
        reader = threading.Thread(
            target=_read_stdin, args=(stdin_fd, loop, chunks, job), name="stdin", daemon=True
        )
        reader.start()
    if resize_fd is not None:
        loop.add_signal_handler(signal.SIGWINCH, resized.set)
    stdin_open = stdin_fd is not None
    try:
        while stdin_open or resize_fd is not None:
            if resized.is_set():
                resized.clear()
                size = terminal_size(resize_fd) if resize_fd is not None else None
                if size is not None:
                    yield JobInput(job, resize=size)
                continue
            waits: set[asyncio.Future[Any]] = {asyncio.ensure_future(resized.wait())}
            getter = asyncio.ensure_future(chunks.get()) if stdin_open else None
            if getter is not None:
                waits.add(getter)
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waits:
                    if not waiter.done():
                        waiter.cancel()
            if getter is not None and getter.done() and not getter.cancelled():
                item = getter.result()
                stdin_open = not item.eof
                yield item
    finally:
        if resize_fd is not None:
            loop.remove_signal_handler(signal.SIGWINCH)
