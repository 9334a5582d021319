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
from hodei.domain.stdio import JobInput, TerminalSize
from hodei.worker import containment
from hodei.worker.terminal import PseudoTerminal, on_controlling_terminal

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


def _start_error(program: str, exc: OSError, cwd: str | None) -> StartError:
    if cwd is not None and exc.filename == cwd:
        # Hodei was told to run it there (--workdir) and could not: not the command's fault.
        return StartError(
            f"working directory {cwd} (--workdir): {exc.strerror}", StartFailure.AGENT_ERROR
        )
    if isinstance(exc, FileNotFoundError):
        return StartError(
            f"{program}: command not found ({exc.strerror})", StartFailure.COMMAND_NOT_FOUND
        )
    if isinstance(exc, PermissionError):
        return StartError(
            f"{program}: cannot execute ({exc.strerror})", StartFailure.NOT_EXECUTABLE
        )
    return StartError(f"{program}: cannot start ({exc})", StartFailure.NOT_EXECUTABLE)


class _Protocol(asyncio.SubprocessProtocol):
    def __init__(self, sink: OutputSink, output_pipes: bool = True) -> None:
        self._sink = sink
        self.exited = asyncio.Event()
        self.pipes_closed = asyncio.Event()
        self._open = {1, 2} if output_pipes else set()
        if not self._open:  # on a terminal the output comes from the pty, not pipes
            self.pipes_closed.set()

    def pipe_data_received(self, fd: int, data: bytes | str) -> None:
        self._sink(_STREAMS[fd], bytes(data) if isinstance(data, bytes) else data.encode())

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        if fd not in self._open:
            return  # stdin
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
        terminal: PseudoTerminal | None = None,
    ) -> None:
        self._transport = transport
        self._protocol = protocol
        self._terminal = terminal
        self.pid: int = transport.get_pid()
        self.contained = contained

    @classmethod
    async def start(
        cls,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        sink: OutputSink,
        stdin: bool = False,
        tty: TerminalSize | None = None,
        cwd: str | None = None,
        contained: bool = False,
    ) -> JobProcess:
        """Start ``argv`` with ``env``; raise :class:`StartError` if it cannot be executed.

        ``stdin``: the job's stdin is a pipe fed by :meth:`feed` (else empty). ``tty``: the
        job runs on a pseudo-terminal of that size instead, its output all on stdout.
        ``cwd``: its working directory (else the agent's). ``contained``: this process
        is a child subreaper that runs nothing but this job, so all its descendants
        belong to the job and are killed with it.
        """
        loop = asyncio.get_running_loop()
        terminal = PseudoTerminal(tty) if tty is not None else None
        options: dict[str, Any] = (
            terminal.spawn_options()
            if terminal is not None
            else {
                "process_group": 0,
                "stdin": asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
                "stdout": asyncio.subprocess.PIPE,
                "stderr": asyncio.subprocess.PIPE,
            }
        )
        try:
            transport, protocol = await loop.subprocess_exec(
                lambda: _Protocol(sink, output_pipes=terminal is None),
                *(argv if terminal is None else on_controlling_terminal(argv)),
                env=dict(env),
                cwd=cwd,
                **options,
            )
        except BaseException as exc:
            if terminal is not None:
                terminal.close()
            if isinstance(exc, OSError):
                raise _start_error(argv[0], exc, cwd) from None
            raise
        process = cls(transport, protocol, contained=contained, terminal=terminal)
        if terminal is not None:
            await terminal.attach(lambda data: sink(LogStream.STDOUT, data))
        else:
            process._grow_pipes()
        return process

    def feed(self, item: JobInput) -> None:
        """Deliver one item of the client's input: bytes to stdin (or typed into the
        terminal), the end of stdin, or a new terminal size."""
        if self._terminal is not None:
            if item.resize is not None:
                self._terminal.resize(item.resize)
            if item.data:
                self._terminal.write(item.data)
            if item.eof:
                self._terminal.end_of_input()
            return
        pipe = self._transport.get_pipe_transport(0)
        if pipe is None or pipe.is_closing():
            return  # no stdin asked for, or it has ended / the job closed it
        if item.data:
            pipe.write(item.data)  # type: ignore[attr-defined]
        if item.eof:
            pipe.close()  # after what is buffered has been written

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
        if self._terminal is not None:
            self._terminal.pause()
        for fd in (1, 2):
            pipe = self._transport.get_pipe_transport(fd)
            if pipe is not None and not pipe.is_closing():
                with contextlib.suppress(RuntimeError):
                    pipe.pause_reading()  # type: ignore[attr-defined]

    def resume_output(self) -> None:
        if self._terminal is not None:
            self._terminal.resume()
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

    async def _output_closed(self) -> None:
        await self._protocol.pipes_closed.wait()
        if self._terminal is not None:
            await self._terminal.closed.wait()

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
            await asyncio.wait_for(self._output_closed(), drain_timeout)
        except TimeoutError:
            # Something left the group (setsid) and still holds the pipes: stop reading
            # rather than wait for it; the job itself has ended.
            for fd in (1, 2):
                pipe = self._transport.get_pipe_transport(fd)
                if pipe is not None:
                    pipe.close()
        if self._terminal is not None:
            self._terminal.close()
        returncode = self._transport.get_returncode()
        self._transport.close()
        return exit_status(returncode if returncode is not None else -signal.SIGKILL)
