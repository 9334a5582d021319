"""The local provider's end of the worker launcher (see :mod:`hodei.worker.launcher`).

One launcher process per provider forks every worker; this client sends it launch
requests over a ``SOCK_SEQPACKET`` socket and turns its answers into awaitables: the
pid of a new worker, and later that worker's exit code. The launcher is either started
here as a fresh interpreter (``python -m hodei.worker.launcher``) or handed in already
forked (``hodei run`` forks it before it starts any thread, which saves a Python start).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from hodei.providers.local import procfs

__all__ = ["Launcher", "LauncherError", "default_launcher_command"]

_SEND_BUFFER = 4 * 1024 * 1024  # room for one request with a large environment


class LauncherError(RuntimeError):
    """The launcher could not be started, or could not start a worker."""


def default_launcher_command() -> list[str]:
    """``python -m hodei.worker.launcher`` with this interpreter (the same Hodei)."""
    return [sys.executable, "-m", "hodei.worker.launcher"]


class Launcher:
    """A connection to one launcher process. Create with :meth:`spawn` or :meth:`adopt`."""

    def __init__(self, pid: int, sock: socket.socket) -> None:
        self.pid = pid
        self._sock = sock
        sock.setblocking(False)
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _SEND_BUFFER)
        self._launches: dict[str, asyncio.Future[int]] = {}
        self._exits: dict[int, asyncio.Future[int | None]] = {}
        self._reading = False
        self._closed = False
        self.connected = True

    @classmethod
    def spawn(cls, command: Sequence[str], env: Mapping[str, str]) -> Launcher:
        """Start ``command FD`` (a fresh launcher) in a session of its own.

        Raises :class:`LauncherError` if it cannot be executed.
        """
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            pid = os.posix_spawnp(
                command[0],
                [*command, "3"],
                dict(env),
                file_actions=[
                    (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                    (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
                    (os.POSIX_SPAWN_DUP2, theirs.fileno(), 3),
                ],
                setsid=True,
                setsigdef=(signal.SIGPIPE, signal.SIGXFSZ),
            )
        except OSError as exc:
            ours.close()
            raise LauncherError(f"cannot start the worker launcher {command[0]!r}: {exc}") from exc
        finally:
            theirs.close()
        return cls(pid, ours)

    @classmethod
    def adopt(cls, pid: int, sock: socket.socket) -> Launcher:
        """Use a launcher already running as ``pid`` (e.g. from ``fork_launcher``)."""
        return cls(pid, sock)

    def _start_reading(self) -> None:
        if not self._reading and not self._closed:
            asyncio.get_running_loop().add_reader(self._sock.fileno(), self._on_readable)
            self._reading = True

    def _on_readable(self) -> None:
        while True:
            try:
                data = self._sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                data = b""
            if not data:
                self._lost()
                return
            self._dispatch(json.loads(data))

    def _dispatch(self, message: dict[str, Any]) -> None:
        if "launched" in message:
            future = self._launches.pop(str(message["launched"]), None)
            if future is not None and not future.done():
                future.set_result(int(message["pid"]))
        elif "failed" in message:
            future = self._launches.pop(str(message["failed"]), None)
            if future is not None and not future.done():
                future.set_exception(LauncherError(str(message.get("error", "unknown error"))))
        elif "exited" in message:
            exit_future = self._exit_future(int(message["exited"]))
            if not exit_future.done():
                exit_future.set_result(int(message["code"]))

    def _lost(self) -> None:
        """The launcher is gone: pending launches fail, exit codes become unknown."""
        self.connected = False
        self._stop_reading()
        for future in self._launches.values():
            if not future.done():
                future.set_exception(LauncherError("the worker launcher exited"))
        self._launches.clear()
        for exit_future in self._exits.values():
            if not exit_future.done():
                exit_future.set_result(None)

    def _stop_reading(self) -> None:
        if self._reading:
            with contextlib.suppress(RuntimeError):  # loop already closed
                asyncio.get_running_loop().remove_reader(self._sock.fileno())
            self._reading = False

    def _exit_future(self, pid: int) -> asyncio.Future[int | None]:
        future = self._exits.get(pid)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            if not self.connected:
                future.set_result(None)
            self._exits[pid] = future
        return future

    async def prepare(self, name: str, cgroups: Sequence[str] = ()) -> None:
        """Have the launcher fork the next worker now, as a spare named ``name`` that
        joins ``cgroups`` and waits for :meth:`launch` with ``spare=name``.

        Raises :class:`LauncherError`.
        """
        if not self.connected:
            raise LauncherError("the worker launcher exited")
        await self._send({"prepare": name, "cgroups": list(cgroups)})

    async def launch(
        self,
        worker_id: str,
        env: Mapping[str, str],
        output: int,
        *,
        cgroups: Sequence[str] = (),
        spare: str | None = None,
        joined: Sequence[str] = (),
    ) -> int:
        """Start a worker with exactly ``env``, stdout/stderr to ``output``; its pid.

        ``cgroups``: directories whose ``cgroup.procs`` the worker joins before it runs.
        ``spare``: the worker is the spare prepared under that name (see :meth:`prepare`),
        already in the cgroups ``joined``; if it is gone, a new fork joins all of them.
        Raises :class:`LauncherError`.
        """
        if not self.connected:
            raise LauncherError("the worker launcher exited")
        self._start_reading()
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._launches[worker_id] = future
        message: dict[str, Any] = {"launch": worker_id, "env": dict(env), "cgroups": list(cgroups)}
        if spare is not None:
            message.update(spare=spare, joined=list(joined))
        try:
            await self._send(message, output)
        except LauncherError:
            self._launches.pop(worker_id, None)
            raise
        return await future

    async def _send(self, message: dict[str, Any], descriptor: int | None = None) -> None:
        """One message, with ``descriptor`` attached; waits while the socket is full."""
        loop = asyncio.get_running_loop()
        data = json.dumps(message).encode()
        ancillary = (
            [(socket.SOL_SOCKET, socket.SCM_RIGHTS, descriptor.to_bytes(4, sys.byteorder))]
            if descriptor is not None
            else []
        )
        while True:
            try:
                self._sock.sendmsg([data], ancillary)
                return
            except BlockingIOError:
                writable = loop.create_future()
                loop.add_writer(self._sock.fileno(), writable.set_result, None)
                try:
                    await writable
                finally:
                    loop.remove_writer(self._sock.fileno())
            except OSError as exc:
                self.connected = False
                raise LauncherError(f"cannot reach the worker launcher: {exc}") from exc

    async def wait_exit(self, pid: int) -> int | None:
        """The exit code of worker ``pid`` once it ends; ``None`` if the launcher is gone
        (the caller then watches the pid itself)."""
        self._start_reading()
        code = await self._exit_future(pid)
        self._exits.pop(pid, None)
        return code

    async def aclose(self, wait: float = 0.0) -> None:
        """:meth:`close`, then give the launcher up to ``wait`` seconds to exit (it does at
        once when it has no worker left), so that it does not outlive its caller."""
        self.close()
        if wait > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(procfs.wait_exit(self.pid, None), wait)
            procfs.reap(self.pid)

    def close(self) -> None:
        """Hang up: the launcher exits once its workers have ended (they keep running)."""
        if self._closed:
            return
        self._stop_reading()
        self._closed = True
        self.connected = False
        self._sock.close()
        for future in self._exits.values():
            if not future.done():
                future.set_result(None)
        procfs.reap(self.pid)  # if it has already ended and is our child
