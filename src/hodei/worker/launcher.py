"""A warmed process that forks a fresh worker agent for each job (zygote, prefork).

Starting ``hodei worker`` as a new interpreter costs a Python start and the agent's
imports (gRPC, asyncio, protobuf: ≈150 ms of CPU) for every job. The launcher pays
that once: it imports the agent, then for each request forks, and the child becomes
the worker. The child is set up as a new process would be: a session of its own,
stdin from ``/dev/null``, stdout/stderr to the log file it was handed, no other file
descriptor, default signal handling, exactly the environment of the request. The
launcher itself never runs job code and never changes its own state after start, so
nothing a job does (env, cwd, umask, open files) can reach the next one.

It is also a child subreaper: a worker that dies (killed by the provider) leaves its
job's processes to the launcher, which kills every child that is not a live worker.

Messages over a ``SOCK_SEQPACKET`` Unix socket, one JSON object each:

* provider → launcher: ``{"launch": WORKER_ID, "env": {...}}`` with the log file's
  descriptor attached (``SCM_RIGHTS``); optional ``"cgroups": [DIR, ...]`` the worker
  joins before it starts; optional ``"spare": NAME, "joined": [DIR, ...]``: the worker is
  the spare prepared as ``NAME``, already in the cgroups ``joined``;
* provider → launcher: ``{"prepare": NAME, "cgroups": [DIR, ...]}``: fork the next
  worker now, as a spare that joins ``cgroups`` and then waits for its request;
* launcher → provider: ``{"launched": WORKER_ID, "pid": N}`` or
  ``{"failed": WORKER_ID, "error": TEXT}``; later ``{"exited": N, "code": C}`` (``C`` as
  a shell reports it: 128+N for a signal).

When the provider's end closes, the launcher stops accepting requests and exits once
its last worker has ended; the workers themselves carry on (a next control plane adopts
them). A launcher forked by a command for its own embedded control plane
(:func:`fork_launcher`) is different: no control plane will come back for its workers,
so when the command's end closes (the command exited, whatever ended it, SIGKILL
included) it kills every worker with its job and removes the command's scratch
directory.

A spare takes the slow part of a start off the job's path. Joining a cgroup makes the
kernel wait for an RCU grace period (the write side of its thread-group lock), ≈10 ms
here when nothing else joined one just before; a fork costs ≈1.5 ms. A spare does both
while the control plane is still busy with the job before, then blocks on a socket of
its own until its request comes (environment, output descriptor, the cgroups it must
still join). It is still a fresh process that has run nothing: a fork of the unchanged
launcher. A spare that was never used dies with the launcher's socket.

Run as ``python -m hodei.worker.launcher FD`` (FD: the socket), or forked from a
process that has not started any thread yet (:func:`serve`).
"""

from __future__ import annotations

import array
import contextlib
import gc
import json
import os
import selectors
import shutil
import signal
import socket
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from hodei.domain import exitcodes
from hodei.worker import containment

__all__ = ["MAX_MESSAGE", "fork_launcher", "serve"]

MAX_MESSAGE = 4 * 1024 * 1024  # bytes of one request: env and all


def _exit_code(status: int) -> int:
    return exitcodes.from_returncode(os.waitstatus_to_exitcode(status))


def _send(sock: socket.socket | None, message: dict[str, Any]) -> None:
    if sock is None:
        return
    with contextlib.suppress(OSError):  # the provider is gone: nobody to tell
        sock.sendmsg([json.dumps(message).encode()])


def _receive(sock: socket.socket) -> tuple[dict[str, Any], int | None] | None:
    """One request and its attached descriptor; ``None`` when the peer has closed."""
    fds = array.array("i")
    data, ancillary, _, _ = sock.recvmsg(MAX_MESSAGE, socket.CMSG_SPACE(fds.itemsize))
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
    if not data:
        for fd in fds:
            os.close(fd)
        return None
    return json.loads(data), (fds[0] if fds else None)


def _reset_signals() -> None:
    """In a forked child: the signal handling of a fresh interpreter."""
    signal.set_wakeup_fd(-1)
    for signum in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)


def _join(cgroups: Sequence[str]) -> None:
    for directory in cgroups:
        with open(os.path.join(directory, "cgroup.procs"), "w") as procs:
            procs.write("0")


def _run_agent(env: dict[str, str], output: int) -> NoReturn:
    """In a detached child: stdin from ``/dev/null``, stdout/stderr to ``output``, no
    other descriptor, exactly ``env``; run the agent and exit with its code."""
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(output, 1)
    os.dup2(output, 2)
    os.closerange(3, _max_fd())
    _set_environment(env)
    from hodei.config import SettingsError, load_worker_settings
    from hodei.worker.entry import exit_now, run_worker

    try:
        settings = load_worker_settings(os.environ)
    except SettingsError as exc:
        print(f"hodei worker: {exc}", file=sys.stderr)
        os._exit(2)
    exit_now(run_worker(settings))


def _set_environment(env: dict[str, str]) -> None:
    """Make this process's environment exactly ``env``. The launcher's own is the
    provider's, which a request's differs from only by the agent's few variables: changing
    just those costs a fraction of clearing and setting them all (≈0.6 ms per worker)."""
    for name in [name for name in os.environ if name not in env]:
        del os.environ[name]
    for name, value in env.items():
        if os.environ.get(name) != value:
            os.environ[name] = value


def _cannot_start(exc: BaseException) -> NoReturn:
    """A worker that cannot start says why in its log (or stderr) and exits 125."""
    with contextlib.suppress(Exception):
        os.write(2, f"hodei worker: cannot start: {exc!r}\n".encode())
    os._exit(125)


def _become_worker(env: dict[str, str], output: int, cgroups: Sequence[str]) -> NoReturn:
    """In the forked child: set up a clean process and run the agent; never returns."""
    try:
        _reset_signals()
        os.setsid()
        _join(cgroups)
        _run_agent(env, output)
    except BaseException as exc:
        _cannot_start(exc)


def _become_spare(sock: socket.socket, cgroups: Sequence[str]) -> NoReturn:
    """In the forked child: detach, join ``cgroups``, then wait on ``sock`` for the
    request and run it; exit quietly if the launcher hangs up first."""
    try:
        _reset_signals()
        keep = sock.fileno()
        os.closerange(3, keep)  # the launcher's socket and pipes are not the spare's
        os.closerange(keep + 1, _max_fd())
        os.setsid()
        _join(cgroups)
        received = _receive(sock)
        if received is None:
            os._exit(0)
        request, output = received
        if output is None:
            raise OSError("no output descriptor")
        os.dup2(output, 2)  # from now on, what goes wrong is for the worker's log
        _join([str(c) for c in request.get("cgroups", ())])
        env = {str(k): str(v) for k, v in dict(request.get("env", {})).items()}
        sock.close()
        _run_agent(env, output)
    except BaseException as exc:
        _cannot_start(exc)


def _max_fd() -> int:
    try:
        return os.sysconf("SC_OPEN_MAX")
    except (OSError, ValueError):
        return 65536


@dataclass
class _Spare:
    name: str
    pid: int
    sock: socket.socket


class _Launcher:
    def __init__(self, sock: socket.socket) -> None:
        self.sock: socket.socket | None = sock
        self.workers: set[int] = set()
        self.spare: _Spare | None = None

    def end_workers(self) -> None:
        """Kill every worker and what it started (their jobs have no owner left)."""
        for pid in list(self.workers):
            containment.kill_tree(pid)

    def end_spare(self) -> None:
        """Kill the spare (it has run nothing) and wait for it, so that its cgroup is
        empty once the launcher has answered or exited."""
        spare, self.spare = self.spare, None
        if spare is None:
            return
        spare.sock.close()
        with contextlib.suppress(ProcessLookupError):
            os.kill(spare.pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(spare.pid, 0)

    def prepare(self, request: dict[str, Any]) -> None:
        """Fork the next worker ahead of its request (replacing an unused spare)."""
        self.end_spare()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            cgroups = [str(c) for c in request.get("cgroups", ())]
            _flush()
            pid = os.fork()
            if pid == 0:
                _become_spare(theirs, cgroups)
        except Exception as exc:
            ours.close()
            print(f"hodei launcher: cannot prepare a spare worker: {exc}", file=sys.stderr)
            return
        finally:
            theirs.close()
        self.spare = _Spare(str(request.get("prepare", "")), pid, ours)

    def launch(self, request: dict[str, Any], output: int | None) -> None:
        worker_id = str(request.get("launch", ""))
        if output is None:
            _send(self.sock, {"failed": worker_id, "error": "no output descriptor"})
            return
        try:
            env = {str(k): str(v) for k, v in dict(request.get("env", {})).items()}
            cgroups = [str(c) for c in request.get("cgroups", ())]
            pid = self._hand_to_spare(request, env, cgroups, output)
            if pid is None:
                _flush()
                pid = os.fork()
                if pid == 0:
                    _become_worker(env, output, cgroups)
        except Exception as exc:
            _send(self.sock, {"failed": worker_id, "error": str(exc) or type(exc).__name__})
            return
        finally:
            os.close(output)
        self.workers.add(pid)
        _send(self.sock, {"launched": worker_id, "pid": pid})

    def _hand_to_spare(
        self, request: dict[str, Any], env: dict[str, str], cgroups: list[str], output: int
    ) -> int | None:
        """The spare's pid once it has the request; None when it cannot take it (none
        asked for, another one, or it died): the caller forks a worker instead."""
        name = request.get("spare")
        spare = self.spare
        if name is None or spare is None:
            return None
        if spare.name != str(name):
            self.end_spare()  # prepared for a request that never came
            return None
        self.spare = None
        joined = {str(c) for c in request.get("joined", ())}
        message = {"env": env, "cgroups": [c for c in cgroups if c not in joined]}
        ancillary = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, output.to_bytes(4, sys.byteorder))]
        try:
            spare.sock.sendmsg([json.dumps(message).encode()], ancillary)
        except OSError:
            # It died (killed from outside): whatever is left of it goes, a fork replaces it.
            self.spare = spare
            self.end_spare()
            return None
        spare.sock.close()
        return spare.pid

    def reap(self) -> None:
        """Collect ended children; kill those that are not workers (orphans of a worker
        that died), so that a job cannot outlive its worker."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            if pid in self.workers:
                self.workers.discard(pid)
                _send(self.sock, {"exited": pid, "code": _exit_code(status)})
            elif self.spare is not None and pid == self.spare.pid:
                self.spare.sock.close()
                self.spare = None
        spare = self.spare.pid if self.spare is not None else None
        for pid in containment.children(os.getpid()):
            if pid not in self.workers and pid != spare:
                containment.kill_tree(pid)


def _flush() -> None:
    """Flush Python's buffers before a fork, so that no child writes them again."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()


def serve(
    sock: socket.socket, *, workers_outlive_caller: bool = True, scratch: str | None = None
) -> NoReturn:
    """Serve launch requests on ``sock`` until it closes and no worker is left; exits.

    With ``workers_outlive_caller`` false, the workers are killed when ``sock`` closes,
    and the directory ``scratch`` (if given) is removed before exiting."""
    from hodei.worker.entry import prepare_process

    prepare_process()  # once here rather than in every worker
    # What is loaded now is shared with every worker; frozen, the collector of a worker
    # never walks (and so never copies) those pages.
    gc.collect()
    gc.freeze()
    containment.become_subreaper()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's Ctrl-C is for the CLI
    for signum in (signal.SIGTERM, signal.SIGHUP):  # whatever a forking CLI had set
        signal.signal(signum, signal.SIG_DFL)
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_read, False)
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)
    launcher = _Launcher(sock)
    events = selectors.DefaultSelector()
    events.register(sock, selectors.EVENT_READ, "request")
    events.register(wake_read, selectors.EVENT_READ, "child")
    try:
        while launcher.sock is not None or launcher.workers:
            for key, _ in events.select():
                if key.data == "child":
                    with contextlib.suppress(BlockingIOError):
                        os.read(wake_read, 4096)
                    launcher.reap()
                    continue
                try:
                    received = _receive(sock)
                except (OSError, ValueError) as exc:
                    print(f"hodei launcher: bad request: {exc}", file=sys.stderr)
                    continue
                if received is None:
                    events.unregister(sock)
                    launcher.sock = None
                    sock.close()
                    launcher.end_spare()
                    if not workers_outlive_caller:
                        launcher.end_workers()
                    continue
                request, output = received
                if "prepare" in request:
                    if output is not None:
                        os.close(output)
                    launcher.prepare(request)
                else:
                    launcher.launch(request, output)
            launcher.reap()
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
        os._exit(0)


def fork_launcher(*, scratch: str | None = None) -> tuple[int, socket.socket]:
    """Fork a launcher from this process; its pid and the provider's end of the socket.

    The launcher serves this process only: when this process exits, however it ends, the
    launcher kills the workers it started and removes the directory ``scratch``.

    Call it before this process starts any thread (gRPC's included): a fork copies only
    the calling thread. The launcher leaves the terminal's process group and closes every
    descriptor but its socket (its stderr too: it must not hold the caller's terminal
    or pipe open after the caller has exited).
    """
    _warm()
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    pid = os.fork()
    if pid == 0:
        try:
            ours.close()
            os.setsid()
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            keep = theirs.fileno()
            os.closerange(3, keep)
            os.closerange(keep + 1, _max_fd())
            serve(theirs, workers_outlive_caller=False, scratch=scratch)
        finally:
            os._exit(125)
    theirs.close()
    return pid, ours


def _warm() -> None:
    """Load what every worker needs once, here, so each fork inherits it ready."""
    import hodei.config
    import hodei.worker.agent
    import hodei.worker.entry
    import hodei.worker.socket_connection  # noqa: F401


def main(argv: Sequence[str]) -> NoReturn:
    """``python -m hodei.worker.launcher FD``."""
    _warm()
    serve(socket.socket(fileno=int(argv[1])))


if __name__ == "__main__":
    main(sys.argv)
