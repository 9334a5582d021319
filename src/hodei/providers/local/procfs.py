"""What the local provider needs to know about processes, read from ``/proc`` (Linux).

A worker runs in its own session, and the job it runs sits in a process group inside
that session, so "everything this worker started" is "every process of its session":
that is what :func:`kill_session` ends. Start times tell a worker from an unrelated
process that reused its pid after a restart of the control plane.
"""

from __future__ import annotations

import contextlib
import os
import signal


def _stat_fields(pid: int | str) -> list[str] | None:
    """Fields of ``/proc/PID/stat`` after the command name (state is index 0)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as file:
            text = file.read()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return text.rpartition(b")")[2].decode().split()


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot, or ``None`` if it is gone."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields is not None and len(fields) > 19 else None


def running(pid: int, started: int | None = None) -> bool:
    """Whether ``pid`` runs (zombies do not) and, if given, started at ``started``."""
    fields = _stat_fields(pid)
    if fields is None or fields[0] in ("Z", "X"):
        return False
    return started is None or (len(fields) > 19 and int(fields[19]) == started)


def session_members(sid: int) -> list[int]:
    """Pids of the live processes in session ``sid``."""
    members = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        fields = _stat_fields(name)
        if fields is not None and len(fields) > 3 and fields[0] != "Z" and int(fields[3]) == sid:
            members.append(int(name))
    return members


def signal_session(sid: int, signum: int) -> None:
    """Send ``signum`` to every process of session ``sid`` (and its leader's group)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(sid, signum)
    for pid in session_members(sid):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signum)


async def wait_exit(pid: int, started: int | None, poll: float = 0.2) -> None:
    """Wait until ``pid`` (not necessarily our child) has ended.

    Uses a pidfd where the kernel has them (readable once the process ends), else polls.
    """
    import asyncio

    try:
        fd = os.pidfd_open(pid)
    except (OSError, AttributeError):
        fd = None
    if fd is None:
        while running(pid, started):  # noqa: ASYNC110 - nothing to wait on but time
            await asyncio.sleep(poll)
        return
    try:
        if not running(pid, started):
            return
        ended = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_reader(fd, ended.set)
        try:
            await ended.wait()
        finally:
            loop.remove_reader(fd)
    finally:
        os.close(fd)


def reap(pid: int) -> int | None:
    """Collect our ended child ``pid``: its exit code (``-N`` for signal N), or ``None`` if
    it is not ours to collect (still running, or reaped already)."""
    try:
        reaped, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return None
    return os.waitstatus_to_exitcode(status) if reaped else None


async def wait_child(pid: int) -> int | None:
    """Wait until our child ``pid`` has ended, then :func:`reap` it."""
    await wait_exit(pid, None)
    return reap(pid)


def kill_session(sid: int) -> None:
    """SIGKILL everything in session ``sid``."""
    signal_session(sid, signal.SIGKILL)
