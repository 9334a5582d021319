"""A job that runs in another container of the pod, started by the launcher there.

When a job names its own image, the agent does not run the command itself: the job's
container runs ``launch.sh`` (``src/hodei/worker/launch.sh``) under a static
busybox, and the two meet in a shared directory (``HODEI_LAUNCHER_DIR``) holding four
fifos the pod's init container made. The agent opens its ends when it starts
(:meth:`LauncherLink.open`), writes the job's argv and env into the file ``job`` once it
is assigned, says ``go`` on ``ctl`` and reads the launcher's reports on ``status``. The
command's stdout and stderr arrive on fifos of their own, so they stay apart and in
order, exactly as bytes. The pod shares one process namespace: the launcher reports its
pid, the command's processes are those of the launcher's session (the runtime made the
launcher a session leader), and the agent signals them itself, so a timeout or a cancel
reaches the whole tree, not only the first process.

:class:`LaunchedJob` offers what :class:`hodei.worker.process.JobProcess` offers, so the
rest of the agent does not care where the command runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import io
import os
import shlex
import signal
from collections.abc import Coroutine, Mapping, Sequence
from pathlib import Path
from typing import Any

from hodei.domain import exitcodes
from hodei.domain.logs import LogStream
from hodei.domain.reasons import StartFailure
from hodei.domain.stdio import JobInput
from hodei.worker.process import PIPE_DRAIN_TIMEOUT, OutputSink, StartError

__all__ = ["LaunchedJob", "LauncherLink", "hide_from_job", "job_script", "session_members"]

PR_SET_DUMPABLE = 4  # <linux/prctl.h>


def hide_from_job() -> bool:
    """Make this process non-dumpable; False where the kernel or libc refuses.

    The job's processes share the pod's process namespace and the agent's uid (so that
    the agent may signal them); a non-dumpable process's ``/proc/PID/environ`` and
    memory are root's, so the job cannot read the worker's token or its session from
    there (ptrace(2), "Ptrace access mode checking"). prctl is reached with ctypes: one
    call is not worth a dependency.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def job_script(
    argv: Sequence[str],
    env: Mapping[str, str],
    *,
    workdir: str | None = None,
    stdin: bool = False,
) -> str:
    """The ``job`` file the launcher sources: ``hodei_run`` with the env, then the argv,
    then the working directory (``--workdir``) and whether stdin comes from the client.

    Every word is single-quoted (POSIX ``sh``), so any byte but NUL passes unchanged;
    variables go through ``env NAME=VALUE`` rather than ``export``, so names a shell would
    refuse (``a.b``) still reach the command. Raises ValueError for an empty argv or a
    name that is empty or holds ``=`` (the environment cannot carry it).
    """
    if not argv:
        raise ValueError("argv: a job needs a command")
    for name in env:
        if not name or "=" in name or "\0" in name:
            raise ValueError(f"env: {name!r} is not a variable name (no '=' and not empty)")
    assignments = " ".join(shlex.quote(f"{k}={v}") for k, v in env.items())
    lines = [f'hodei_run() {{ "$bb" env {assignments} "$@"; }}']
    lines.append("set -- " + " ".join(shlex.quote(word) for word in argv))
    if "PATH" in env:
        lines.append(f"hodei_path={shlex.quote(env['PATH'])}")
    if workdir is not None:
        lines.append(f"hodei_workdir={shlex.quote(workdir)}")
    if stdin:
        lines.append("hodei_stdin=1")
    return "\n".join(lines) + "\n"


def session_members(sid: int) -> list[int]:
    """Pids of the live processes of session ``sid`` (Linux ``/proc``; field 6 of stat)."""
    members = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as file:
                fields = file.read().rpartition(b")")[2].split()
        except OSError:
            continue
        if len(fields) > 3 and fields[0] not in (b"Z", b"X") and int(fields[3]) == sid:
            members.append(int(name))
    return members


class _Reader(asyncio.Protocol):
    """One output fifo into the sink; ``closed`` once every writer has gone."""

    def __init__(self, stream: LogStream, sink: OutputSink) -> None:
        self._stream = stream
        self._sink = sink
        self.closed = asyncio.Event()

    def data_received(self, data: bytes) -> None:
        self._sink(self._stream, bytes(data))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed.set()


class LauncherLink:
    """The agent's ends of the fifos, opened before any job so the launcher can start.

    ``ctl`` is held open read-write: the launcher's ``read`` then waits for ``go``, and
    sees end-of-file (and leaves) if the agent dies first. ``status`` is read with a
    spare writer of our own, so that nothing is lost before the launcher opens its end;
    once the launcher's process is gone (a pidfd says so) the spare is dropped, and the
    reports end with whatever it managed to say.
    """

    def __init__(self, directory: Path, ctl: int, status_keep: int) -> None:
        self.directory = directory
        self._ctl = ctl
        self._status_keep: int | None = status_keep
        self._lines: asyncio.StreamReader = asyncio.StreamReader()
        self._reports: asyncio.Queue[list[str]] = asyncio.Queue()
        self.launcher_pid: int | None = None
        self.ready = asyncio.Event()  # the launcher said "ready": it holds its ends open
        self._tasks: set[asyncio.Task[None]] = set()
        self._transport: asyncio.BaseTransport | None = None

    @classmethod
    async def open(cls, directory: Path) -> LauncherLink:
        """Open the agent's ends in ``directory``; raises OSError if the fifos are missing."""
        ctl = os.open(directory / "ctl", os.O_RDWR | os.O_NONBLOCK)
        status = os.open(directory / "status", os.O_RDONLY | os.O_NONBLOCK)
        keep = os.open(directory / "status", os.O_WRONLY | os.O_NONBLOCK)
        link = cls(directory, ctl, keep)
        loop = asyncio.get_running_loop()
        link._transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(link._lines), io.FileIO(status, "rb")
        )
        link._spawn(link._pump())
        return link

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _pump(self) -> None:
        while line := await self._lines.readline():
            words = line.decode(errors="replace").split()
            if words[:1] == ["ready"] and len(words) > 1 and self.launcher_pid is None:
                self.launcher_pid = int(words[1])
                self.ready.set()
                self._spawn(self._watch(self.launcher_pid))
            elif words:
                self._reports.put_nowait(words)
        self._reports.put_nowait([])

    async def _watch(self, pid: int) -> None:
        """Drop the spare writer once the launcher's process has ended."""
        try:
            fd = os.pidfd_open(pid)
        except OSError:  # gone already
            self.release_status()
            return
        ended = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_reader(fd, ended.set)
        try:
            await ended.wait()
        finally:
            loop.remove_reader(fd)
            os.close(fd)
        self.release_status()

    async def report(self) -> list[str]:
        """The launcher's next report, split into words; ``[]`` once it can say no more."""
        words = await self._reports.get()
        if not words:
            self._reports.put_nowait(words)  # the end stays the end for later readers
        return words

    def release_status(self) -> None:
        """Drop our spare writer: with the launcher gone, ``status`` reads end-of-file."""
        if self._status_keep is not None:
            os.close(self._status_keep)
            self._status_keep = None

    def go(self, script: str) -> None:
        """Put the job in place (atomically) and tell the launcher to run it."""
        staged = self.directory / "job.tmp"
        staged.write_text(script)
        staged.replace(self.directory / "job")
        os.write(self._ctl, b"go\n")

    async def close(self) -> None:
        """Stop reading and close the agent's ends (the launcher then sees end-of-file)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.release_status()
        if self._transport is not None:
            self._transport.close()
        with contextlib.suppress(OSError):
            os.close(self._ctl)


async def _open_output(
    directory: Path, stream: LogStream, sink: OutputSink
) -> tuple[asyncio.ReadTransport, _Reader, int]:
    """Read end plus a spare write end (closed once the launcher holds its own)."""
    path = directory / stream.value.lower()
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    keep = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    reader = _Reader(stream, sink)
    loop = asyncio.get_running_loop()
    transport, _ = await loop.connect_read_pipe(lambda: reader, io.FileIO(fd, "rb"))
    return transport, reader, keep


async def _open_input(directory: Path) -> asyncio.WriteTransport:
    """The write end of the command's stdin (the launcher holds the read end by now)."""
    fd = os.open(directory / "stdin", os.O_WRONLY | os.O_NONBLOCK)
    loop = asyncio.get_running_loop()
    transport, _ = await loop.connect_write_pipe(asyncio.Protocol, io.FileIO(fd, "wb"))
    return transport


class LaunchedJob:
    """The command run by the launcher; the same surface as ``JobProcess``."""

    def __init__(
        self,
        link: LauncherLink,
        pid: int,
        outputs: list[tuple[asyncio.ReadTransport, _Reader]],
        stdin: asyncio.WriteTransport | None = None,
    ) -> None:
        self._link = link
        self.pid = pid
        self._outputs = outputs
        self._stdin = stdin
        self.oom_killed = False
        self._ended: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._watch = asyncio.get_running_loop().create_task(self._follow())

    @classmethod
    async def start(
        cls,
        link: LauncherLink,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        sink: OutputSink,
        stdin: bool = False,
        cwd: str | None = None,
    ) -> LaunchedJob:
        """Hand the job to the launcher; return once the command runs.

        ``stdin``: the command reads what :meth:`feed` delivers (else nothing); ``cwd``:
        its working directory in the image (else the image's ``WORKDIR``). Raises
        :class:`StartError` when the image has no such command (127), does not let the
        pod's user execute it (126) or has no such directory, or when the launcher went
        away (125).
        """
        try:
            script = job_script(argv, env, workdir=cwd, stdin=stdin)
        except ValueError as exc:
            raise StartError(str(exc), StartFailure.AGENT_ERROR) from None
        outputs = []
        keeps = []
        for stream in (LogStream.STDOUT, LogStream.STDERR):
            transport, reader, keep = await _open_output(link.directory, stream, sink)
            outputs.append((transport, reader))
            keeps.append(keep)
        if stdin:  # lets the launcher open its end without waiting for ours
            keeps.append(os.open(link.directory / "stdin", os.O_RDWR | os.O_NONBLOCK))
        try:
            link.go(script)
            words = await link.report()
            started = words[:1] == ["started"] and len(words) > 1
            writer = await _open_input(link.directory) if started and stdin else None
        finally:
            for keep in keeps:
                os.close(keep)
        if started:
            return cls(link, int(words[1]), outputs, writer)
        for transport, _ in outputs:
            transport.close()
        raise _start_error(argv[0], words, cwd)

    def feed(self, item: JobInput) -> None:
        """Deliver the client's input: bytes to the command's stdin, then its end.

        A terminal resize has nothing to act on: the launched command has no terminal.
        """
        if self._stdin is None or self._stdin.is_closing():
            return
        if item.data:
            self._stdin.write(item.data)
        if item.eof:
            self._stdin.close()  # after what is buffered has been written

    async def _follow(self) -> None:
        """Resolve ``_ended`` with the command's status, or 137 if the launcher vanished."""
        words = await self._link.report()
        code = exitcodes.OOM_KILLED  # the launcher itself was killed: SIGKILL as it appears
        if words[:1] == ["exit"] and len(words) > 1:
            code = int(words[1])
            self.oom_killed = len(words) > 2 and words[2] == "1"
        if not self._ended.done():
            self._ended.set_result(code)

    def pause_output(self) -> None:
        for transport, _ in self._outputs:
            if not transport.is_closing():
                transport.pause_reading()

    def resume_output(self) -> None:
        for transport, _ in self._outputs:
            if not transport.is_closing():
                transport.resume_reading()

    def signal_group(self, signum: int) -> None:
        """Send ``signum`` to every process of the command (the launcher's session)."""
        for pid in session_members(self.pid):
            if pid != self.pid:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signum)

    async def kill_group(self, grace: float) -> None:
        """SIGTERM the command's processes, then SIGKILL what is left after ``grace``."""
        self.signal_group(signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._ended), grace)
        self.signal_group(signal.SIGKILL)

    async def wait(self, drain_timeout: float = PIPE_DRAIN_TIMEOUT) -> int:
        """The command's exit status once it ended and its output is read.

        What it left running is killed, as when a local command ends; output still held
        by a process that escaped gets ``drain_timeout`` seconds.
        """
        code = await asyncio.shield(self._ended)
        self.signal_group(signal.SIGKILL)
        closed = [reader.closed.wait() for _, reader in self._outputs]
        try:
            await asyncio.wait_for(asyncio.gather(*closed), drain_timeout)
        except TimeoutError:
            for transport, _ in self._outputs:
                transport.close()
        return code


def _start_error(command: str, words: list[str], cwd: str | None) -> StartError:
    if words[:1] == ["noworkdir"]:
        return StartError(
            f"working directory {cwd} (--workdir): not a directory the job may enter in its image",
            StartFailure.AGENT_ERROR,
        )
    if words[:1] == ["notfound"]:
        return StartError(
            f"{command}: command not found in the job's image (looked up in its PATH)",
            StartFailure.COMMAND_NOT_FOUND,
        )
    if words[:1] == ["noexec"] and len(words) > 2:
        return StartError(
            f"{words[1]}: permission denied for uid {words[2]}: the pod runs the job as a "
            'non-root user (Pod Security "restricted"), and this image lets only root '
            "execute it",
            StartFailure.NOT_EXECUTABLE,
        )
    return StartError(
        "the job's container ended before its command started", StartFailure.AGENT_ERROR
    )
