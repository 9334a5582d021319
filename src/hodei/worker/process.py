"""The job's process: started in its own process group, output as bytes, killed entirely.

The command runs in a new process group (inside the worker's session), so a timeout or a
cancel can signal what it started — ``sh -c 'a | b &'`` included — and the agent itself
is not hit. A job can leave its group, though (``setsid``, ``set -m``, a double fork):
when the agent is a child subreaper (:mod:`hodei.worker.containment`), the job is
*contained* and every descendant of the agent is the job's, so stopping the job kills
all of them. Output is handed over exactly as read from the pipes (no decoding, no line
splitting), and reading pauses when the caller says its buffer is full.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from hodei.domain import exitcodes
from hodei.domain.logs import LogStream
from hodei.domain.reasons import StartFailure
from hodei.worker import containment

OutputSink = Callable[[LogStream, bytes], None]

_STREAMS: dict[int, LogStream] = {1: LogStream.STDOUT, 2: LogStream.STDERR}
# Bigger pipes mean fewer reads and wake-ups for jobs that print a lot (Linux only).
_F_SETPIPE_SZ = 1031
_PIPE_SIZE = 1024 * 1024
PIPE_DRAIN_TIMEOUT = 2.0  # seconds to read what is left in the pipes after the job ends


class StartError(Exception):
    """The command could not be started; ``kind`` says why, ``exit_code`` follows the
    shell's convention for it."""

    def __init__(self, message: str, kind: StartFailure) -> None:
        super().__init__(message)
        self.kind = kind
        self.exit_code = exitcodes.for_start_failure(kind)


exit_status = exitcodes.from_returncode


class _Protocol(asyncio.SubprocessProtocol):
    def __init__(self, sink: OutputSink) -> None:
        self._sink = sink
        self.exited = asyncio.Event()
        self.pipes_closed = asyncio.Event()
        self._open = {1, 2}

    def pipe_data_received(self, fd: int, data: bytes | str) -> None:
        self._sink(_STREAMS[fd], bytes(data) if isinstance(data, bytes) else data.encode())

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        self._open.discard(fd)
        if not self._open:
            self.pipes_closed.set()

    def process_exited(self) -> None:
        self.exited.set()


class JobProcess:
    """One running command. Create with :meth:`start`; await :meth:`wait` for its status."""

    def __init__(
        self,
        transport: asyncio.SubprocessTransport,
        protocol: _Protocol,
        *,
        contained: bool = False,
    ) -> None:
        self._transport = transport
        self._protocol = protocol
        self.pid: int = transport.get_pid()
        self.contained = contained

    @classmethod
    async def start(
        cls,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        sink: OutputSink,
        contained: bool = False,
    ) -> JobProcess:
        """Start ``argv`` with ``env``; raise :class:`StartError` if it cannot be executed.

        ``contained``: this process is a child subreaper that runs nothing but this job,
        so all its descendants belong to the job and are killed with it.
        """
        loop = asyncio.get_running_loop()
        options: dict[str, Any] = {"process_group": 0}
        try:
            transport, protocol = await loop.subprocess_exec(
                lambda: _Protocol(sink),
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=dict(env),
                **options,
            )
        except FileNotFoundError as exc:
            raise StartError(
                f"{argv[0]}: command not found ({exc.strerror})", StartFailure.COMMAND_NOT_FOUND
            ) from None
        except PermissionError as exc:
            raise StartError(
                f"{argv[0]}: cannot execute ({exc.strerror})", StartFailure.NOT_EXECUTABLE
            ) from None
        except OSError as exc:
            raise StartError(
                f"{argv[0]}: cannot start ({exc})", StartFailure.NOT_EXECUTABLE
            ) from None
        process = cls(transport, protocol, contained=contained)
        process._grow_pipes()
        return process

    def _grow_pipes(self) -> None:
        for fd in (1, 2):
            pipe = self._transport.get_pipe_transport(fd)
            handle = pipe.get_extra_info("pipe") if pipe is not None else None
            if handle is not None:
                with contextlib.suppress(OSError, ValueError, ImportError):
                    import fcntl

                    fcntl.fcntl(handle.fileno(), _F_SETPIPE_SZ, _PIPE_SIZE)

    def pause_output(self) -> None:
        """Stop reading the pipes; the job blocks once they are full."""
        for fd in (1, 2):
            pipe = self._transport.get_pipe_transport(fd)
            if pipe is not None and not pipe.is_closing():
                with contextlib.suppress(RuntimeError):
                    pipe.pause_reading()  # type: ignore[attr-defined]

    def resume_output(self) -> None:
        for fd in (1, 2):
            pipe = self._transport.get_pipe_transport(fd)
            if pipe is not None and not pipe.is_closing():
                with contextlib.suppress(RuntimeError):
                    pipe.resume_reading()  # type: ignore[attr-defined]

    def signal_group(self, signum: int) -> None:
        """Send ``signum`` to the job's process group and, when contained, to every
        process the job started wherever it went (gone already is fine)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signum)
        if self.contained:
            containment.signal_descendants(signum)

    async def kill_group(self, grace: float) -> None:
        """SIGTERM the job, then SIGKILL whatever is left after ``grace`` seconds."""
        self.signal_group(signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._protocol.exited.wait(), grace)
        await self._kill_rest()

    async def _kill_rest(self) -> None:
        """SIGKILL what the job left: its group, or (contained) all it started."""
        if self.contained:
            # The job's own process is reaped by asyncio's child watcher, not here.
            await containment.kill_descendants(spare={self.pid})
        else:
            self.signal_group(signal.SIGKILL)

    async def wait(self, drain_timeout: float = PIPE_DRAIN_TIMEOUT) -> int:
        """Wait for the command and all of its output; return its exit status.

        When the command itself ends, whatever it left running is killed (its group; when
        contained, everything it started), so a stray background process neither outlives
        the job nor holds its pipes open; one that escaped an uncontained job's group gets
        ``drain_timeout`` seconds before reading stops.
        """
        await self._protocol.exited.wait()
        await self._kill_rest()
        try:
            await asyncio.wait_for(self._protocol.pipes_closed.wait(), drain_timeout)
        except TimeoutError:
            # Something left the group (setsid) and still holds the pipes: stop reading
            # rather than wait for it; the job itself has ended.
            for fd in (1, 2):
                pipe = self._transport.get_pipe_transport(fd)
                if pipe is not None:
                    pipe.close()
        returncode = self._transport.get_returncode()
        self._transport.close()
        return exit_status(returncode if returncode is not None else -signal.SIGKILL)
