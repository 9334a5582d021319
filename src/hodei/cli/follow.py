"""Following a job from the client: its output, its state, the control plane coming and going.

``hodei run``, ``hodei jobs wait`` and ``hodei jobs logs -f`` all stay with a job until it
ends, and all must survive a control-plane restart (the server may be redeployed while a
job runs) without the user wondering whether anything is happening. This module holds what
they share: retrying a stream while the control plane is unreachable, saying on stderr when
it is lost and when it is back, copying output, and stopping on SIGINT/SIGTERM/SIGHUP.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any, BinaryIO, Final, Protocol, TypeVar

from hodei.cli.client import ClientError
from hodei.domain import exitcodes
from hodei.domain.jobs import Job
from hodei.domain.logs import LogChunk, LogStream
from hodei.domain.states import JobState

__all__ = [
    "RECONNECT_FOR",
    "STOP_SIGNALS",
    "ControlPlaneLink",
    "JobReader",
    "Output",
    "StopSignals",
    "copy_logs",
    "exit_code_for",
    "outcome_note",
    "say",
    "wait_for_end",
    "with_reconnects",
]

RECONNECT_FOR = 60.0  # seconds an unreachable control plane may take to come back
# The signals that stop a following command; the job is cancelled and the command exits
# 128+N (POSIX shells' convention, see hodei.domain.exitcodes).
STOP_SIGNALS: Final = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
T = TypeVar("T")


def say(text: str) -> None:
    """One line for the user on stderr. A closed terminal (SIGHUP) must not turn a
    message into a traceback, so write errors are ignored."""
    with contextlib.suppress(OSError, ValueError):
        print(text, file=sys.stderr, flush=True)


def exit_code_for(job: Job) -> int:
    """What ``hodei run`` exits with for a finished job (:func:`exitcodes.exit_code_for`)."""
    return exitcodes.exit_code_for(job.state, job.reason, job.exit_code)


def outcome_note(job: Job) -> str | None:
    """A line for stderr when the exit code alone would not explain what happened."""
    if job.state is JobState.SUCCEEDED or job.reason == "NonZeroExit":
        return None
    detail = f"{job.reason}: {job.message}" if job.message else (job.reason or "")
    return f"hodei: job {job.id} {job.state.value}" + (f" ({detail})" if detail else "")


class JobReader(Protocol):
    """What following a job needs: a control plane's client, or the job store itself."""

    address: str

    async def get(self, job_id: str) -> Job: ...

    def logs(
        self, job_id: str, *, follow: bool = False, from_sequence: int = 0
    ) -> AsyncIterator[LogChunk]: ...

    def watch(self, job_id: str) -> AsyncIterator[Job]: ...


class StopSignals:
    """While entered, SIGINT, SIGTERM and SIGHUP set :attr:`fired` instead of killing us.

    The first signal wins: :attr:`signum` and :attr:`exit_code` (128+N) report it. A
    command that follows a job races its work against :meth:`wait` and, when a signal
    comes first, cancels the job before it exits.
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self.fired = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    def __enter__(self) -> StopSignals:
        self._loop = asyncio.get_running_loop()
        for signum in STOP_SIGNALS:
            self._loop.add_signal_handler(signum, self._fire, signum)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None
        for signum in STOP_SIGNALS:
            self._loop.remove_signal_handler(signum)

    def _fire(self, signum: int) -> None:
        if self.signum is None:
            self.signum = signum
            self.fired.set()

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum else ""

    @property
    def exit_code(self) -> int:
        assert self.signum is not None, "no signal has been received"
        return exitcodes.for_signal(self.signum)

    async def race(self, work: Coroutine[Any, Any, T]) -> T | None:
        """``work``'s result, or ``None`` (and ``work`` cancelled) if a signal came first."""
        task = asyncio.ensure_future(work)
        waiter = asyncio.ensure_future(self.fired.wait())
        try:
            await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if task.cancelled():
            return None
        return task.result()


class ControlPlaneLink:
    """Says on stderr when the control plane stops answering and when it answers again.

    Shared by every stream a command holds open, so one outage is one pair of lines.
    """

    def __init__(self, address: str) -> None:
        self.address = address
        self.lost = False

    def down(self, error: ClientError) -> None:
        if not self.lost:
            self.lost = True
            say(f"hodei: lost the control plane ({error}); reconnecting")

    def up(self) -> None:
        if self.lost:
            self.lost = False
            say(f"hodei: control plane at {self.address} is back; carrying on")


async def with_reconnects(
    attempt: Callable[[], Awaitable[T]],
    *,
    progress: list[int],
    link: ControlPlaneLink | None = None,
    give_up_after: float = RECONNECT_FOR,
) -> T:
    """Run ``attempt`` again while the control plane is unreachable (it may be restarting).

    Gives up after ``give_up_after`` seconds without ``progress`` (a counter the attempt bumps
    whenever it receives something), so a control plane that stays away still ends the
    command with the unreachable error.
    """
    delay, seen, lost_since = 0.1, progress[0], time.monotonic()
    while True:
        try:
            return await attempt()
        except ClientError as exc:
            if not exc.unreachable:
                raise
            if link is not None:
                link.down(exc)
            if progress[0] != seen:
                seen, lost_since, delay = progress[0], time.monotonic(), 0.1
            if time.monotonic() - lost_since > give_up_after:
                raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)


class Output:
    """The job's bytes to our stdout/stderr.

    When our stdout is closed by its reader (``hodei run -- yes | head``), ``broken`` is
    set: like a local command killed by SIGPIPE, the job is then cancelled.
    """

    def __init__(self, stdout: BinaryIO, stderr: BinaryIO) -> None:
        self._streams = {LogStream.STDOUT: stdout, LogStream.STDERR: stderr}
        self._closed: set[LogStream] = set()
        self.broken = asyncio.Event()

    def write(self, stream: LogStream, data: bytes) -> None:
        if stream in self._closed:
            return
        target = self._streams[stream]
        try:
            target.write(data)
            target.flush()
        except BrokenPipeError:
            self._closed.add(stream)
            if stream is LogStream.STDOUT:
                self.broken.set()
        except OSError:  # the terminal went away (SIGHUP follows): nothing to write to
            self._closed.add(stream)


async def copy_logs(
    client: JobReader,
    job_id: str,
    out: Output,
    *,
    link: ControlPlaneLink,
    on_output: Callable[[], None] = lambda: None,
) -> None:
    """Every chunk of the job's output until it ends, across control-plane restarts."""
    last = 0
    progress = [0]

    async def attempt() -> None:
        nonlocal last
        async for chunk in client.logs(job_id, follow=True, from_sequence=last + 1):
            link.up()
            on_output()
            out.write(chunk.stream, chunk.data)
            last = chunk.sequence
            progress[0] += 1

    await with_reconnects(attempt, progress=progress, link=link)


async def wait_for_end(
    client: JobReader,
    job_id: str,
    *,
    link: ControlPlaneLink,
    on_change: Callable[[Job], None] = lambda job: None,
) -> Job:
    """The job once it has ended, across control-plane restarts; ``on_change`` sees
    each state the job passes through (with its waiting reason)."""
    progress = [0]

    async def attempt() -> Job:
        last: Job | None = None
        async for job in client.watch(job_id):
            link.up()
            progress[0] += 1
            last = job
            on_change(job)
            if job.state.terminal:
                return job
        return last if last is not None and last.state.terminal else await client.get(job_id)

    return await with_reconnects(attempt, progress=progress, link=link)
