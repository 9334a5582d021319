"""The local provider: each worker is a ``hodei worker`` process on this machine.

It is the embedded default (``hodei run`` with no server) and the simplest provider, but
it honours the same contract as the Kubernetes one: workers are created per job, their
exit is pushed to the control plane's listener, and they can be listed (and killed)
after a restart of the control plane, thanks to pid files under ``state_dir``.

Workers are forked by a launcher process that has the agent loaded already
(:mod:`hodei.providers.local.launcher`), so a job starts in milliseconds rather than
after a Python start. Each worker still is a fresh process in a session of its own.
Workers and jobs get this process's environment without any of Hodei's own variables
(``HODEI_*``: tokens, database URL, TLS files...), plus the agent's three. Each worker
gets cgroups where the host allows (:mod:`hodei.providers.local.cgroups`): whatever is
left in them when the worker ends is killed, and they carry the job's memory and CPU
limits. A limit the host cannot enforce, or an image, is refused at submit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import shutil
import signal
import tempfile
from collections.abc import Coroutine, Mapping, Sequence
from pathlib import Path
from typing import Any

from hodei.config.settings import ClientTls
from hodei.domain import reasons
from hodei.domain.ids import JobId, WorkerId
from hodei.domain.jobs import JobSpec, SpecError
from hodei.providers.base import (
    ANYWHERE,
    Health,
    Origin,
    ProviderError,
    StatusListener,
    WorkerPhase,
    WorkerRequest,
    WorkerStatus,
    agent_certificate_env,
)
from hodei.providers.local import procfs
from hodei.providers.local.cgroups import Cgroups
from hodei.providers.local.launcher import Launcher, LauncherError, default_launcher_command
from hodei.providers.local.pidfiles import PidFiles, WorkerProcess
from hodei.supervision import Background

__all__ = ["LocalProvider", "hodei_variables_removed"]

log = logging.getLogger(__name__)

DELETE_GRACE = 3.0  # seconds a worker gets to stop its job and leave after SIGTERM
SELF_EXIT_WAIT = 0.5  # seconds a worker gets to leave on its own before SIGTERM
LAUNCHER_EXIT_WAIT = 2.0  # seconds a launcher with no worker left gets to exit on close
_TAIL_BYTES = 2000
_HODEI_PREFIX = "HODEI_"


def _agent_tls_env(tls: ClientTls | None) -> dict[str, str]:
    """The agent's TLS variables: on, verifying with the server's HODEI_TLS_CA_FILE."""
    if tls is None:
        return {}
    env = {"HODEI_TLS": "1"}
    if tls.ca_file:
        env["HODEI_TLS_CA_FILE"] = tls.ca_file
    return env


def hodei_variables_removed(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` without Hodei's own variables (``HODEI_*``): a job sees none of the control
    plane's settings or secrets (API token, database URL, TLS files) unless it asks."""
    return {k: v for k, v in env.items() if not k.startswith(_HODEI_PREFIX)}


class LocalProvider:
    """Workers as local processes, each in its own session; capacity ``max_workers``.

    ``command``: how to start the worker launcher (default ``python -m
    hodei.worker.launcher``); ``launcher``: one already running (``hodei run`` forks it
    early), used instead until it exits.
    """

    def __init__(
        self,
        *,
        max_workers: int,
        state_dir: Path | None = None,
        command: Sequence[str] | None = None,
        env: Mapping[str, str] | None = None,
        agent_tls: ClientTls | None = None,
        launcher: Launcher | None = None,
        cgroups: Cgroups | None = None,
        loops: Background | None = None,
    ) -> None:
        self._max_workers = max_workers
        # The control plane's supervision: a watcher that fails settles its worker.
        self._loops = loops or Background()
        self._agent_tls = _agent_tls_env(agent_tls)
        self._own_state_dir = state_dir is None
        self._state_dir = state_dir or Path(tempfile.mkdtemp(prefix="hodei-local-"))
        self._files = PidFiles(self._state_dir)
        self._command = list(command) if command is not None else default_launcher_command()
        self._launcher = launcher
        # Found at start (unless given): which cgroups this host lets the provider use.
        self._cgroups = cgroups
        self._env = hodei_variables_removed(os.environ if env is None else env)
        self._listener: StatusListener | None = None
        self._statuses: dict[WorkerId, WorkerStatus] = {}
        self._processes: dict[WorkerId, WorkerProcess] = {}
        self._deleting: set[WorkerId] = set()
        self._watchers: dict[WorkerId, asyncio.Task[Any]] = {}
        self._spare: str | None = None  # the name of the worker the launcher has ready
        self._cgroup_of: dict[WorkerId, str] = {}  # the name of each worker's cgroups
        self._idle_cgroups: list[str] = []  # left empty by ended workers, for spares

    @property
    def name(self) -> str:
        return "local"

    @property
    def capacity(self) -> int | None:
        return self._max_workers

    @property
    def launcher_pid(self) -> int | None:
        """The worker launcher's pid while one is connected (for diagnosis and tests)."""
        launcher = self._launcher
        return launcher.pid if launcher is not None and launcher.connected else None

    @property
    def cgroups(self) -> Cgroups:
        """The cgroups this host lets the provider use (for diagnosis and tests)."""
        return self._host_cgroups()

    def check_spec(self, spec: JobSpec) -> None:
        """Refuse what this provider cannot honour rather than drop it: an image, a pod
        profile, env from a Secret (pods only), a limit the host's cgroups cannot enforce."""
        if spec.image is not None:
            raise SpecError(
                f"image {spec.image!r}: local jobs run on this machine, not in an image; "
                "run the job with --provider kubernetes, or drop --image"
            )
        unsupported = self._host_cgroups().unsupported(spec.resources)
        if unsupported:
            flags = " and ".join(f"--{name}" for name in unsupported)
            raise SpecError(
                f"{flags}: this host gives Hodei no writable cgroup to enforce "
                f"{' and '.join(unsupported)} limits of local jobs "
                f"({self._host_cgroups().describe()}); run the job with --provider "
                f"kubernetes, or drop {flags}"
            )
        if spec.secret_env:
            names = ", ".join(sorted(spec.secret_env))
            raise SpecError(
                f"secret_env ({names}): the local provider has no Kubernetes Secrets; "
                "run the job with --provider kubernetes, or pass the value with --env"
            )
        if spec.profile is not None:
            raise SpecError(
                f"profile {spec.profile!r}: pod profiles are for the Kubernetes provider; "
                "run the job with --provider kubernetes, or drop --profile"
            )

    def _host_cgroups(self) -> Cgroups:
        if self._cgroups is None:
            self._cgroups = Cgroups.detect(f"hodei-{os.getpid()}-{secrets.token_hex(3)}")
            log.info("local provider: %s", self._cgroups.describe())
        return self._cgroups

    async def start(self, listener: StatusListener) -> None:
        """Adopt the live workers recorded by a previous control plane; forget dead ones."""
        self._listener = listener
        self._host_cgroups()
        self._files.ensure()
        for record in self._files.read_all():
            worker_id = WorkerId(record.worker_id)
            if not procfs.running(record.pid, record.start_time):
                self._files.remove(worker_id)
                continue
            self._processes[worker_id] = record
            self._statuses[worker_id] = self._running(record)
            self._watch(record, self._watch_adopted(record))
        if self._launcher is not None and self._launcher.connected:
            await self._prepare_spare(self._launcher)  # handed in: ready for a first job

    async def close(self) -> None:
        """Stop watching; worker processes keep running (a next control plane adopts them).

        The launcher exits once its last worker has ended: at once when none is left,
        which this waits for (briefly), so that nothing outlives an embedded control plane.
        """
        for task in self._watchers.values():
            task.cancel()
        await asyncio.gather(*self._watchers.values(), return_exceptions=True)
        self._watchers.clear()
        if self._launcher is not None:
            # The launcher kills the spare and waits for it before it reads on.
            await self._launcher.aclose(wait=0 if self._processes else LAUNCHER_EXIT_WAIT)
            self._launcher = None
        self._forget_spare()
        if self._cgroups is not None:
            for name in self._idle_cgroups:
                self._cgroups.remove(name)
            self._idle_cgroups.clear()
            if not self._processes:
                self._cgroups.close()
        if self._own_state_dir and not self._processes:
            shutil.rmtree(self._state_dir, ignore_errors=True)

    async def create_worker(self, request: WorkerRequest) -> WorkerStatus:
        """Start a worker (the agent) for the request (idempotent per worker id)."""
        known = self._statuses.get(request.worker_id)
        if known is not None:
            return known
        env = {
            **self._env,
            "HODEI_SERVER_ADDRESS": request.server_address,
            "HODEI_WORKER_ID": request.worker_id,
            "HODEI_WORKER_TOKEN": request.token,
            **({"HODEI_SERVER_SOCKET": request.server_socket} if request.server_socket else {}),
            **self._agent_tls,
            **agent_certificate_env(request.agent_certificate),
        }
        # Marked before the first await, so a concurrent call for this id spawns nothing.
        self._statuses[request.worker_id] = WorkerStatus(
            request.worker_id, request.job_id, WorkerPhase.PENDING
        )
        self._files.ensure()
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND
        output = os.open(self._files.log_path(request.worker_id), flags, 0o600)
        try:
            launcher = self._ready_launcher()
            spare, self._spare = self._spare, None
            # The worker's cgroups: those its spare joined, else ones an ended worker left
            # (jobs in a burst outrun the spares), else new ones.
            name = spare or (self._idle_cgroups.pop() if self._idle_cgroups else request.worker_id)
            self._cgroup_of[request.worker_id] = name
            host = self._host_cgroups()
            cgroups = host.create(name, request.resources)
            joined = cgroups[:1] if spare is not None and host.unified is not None else []
            try:
                pid = await launcher.launch(
                    request.worker_id, env, output, cgroups=cgroups, spare=spare, joined=joined
                )
            except LauncherError:
                if launcher.connected:
                    raise
                # The launcher had died (killed, crashed): one more try with a new one.
                launcher = self._ready_launcher()
                pid = await launcher.launch(request.worker_id, env, output, cgroups=cgroups)
        except (LauncherError, OSError) as exc:
            del self._statuses[request.worker_id]
            if request.worker_id in self._cgroup_of:
                self._host_cgroups().remove(self._cgroup_of.pop(request.worker_id))
            raise ProviderError(f"cannot start the worker process: {exc}") from exc
        finally:
            os.close(output)
        record = WorkerProcess(request.worker_id, request.job_id, pid, procfs.start_time(pid))
        self._files.write(record)
        self._processes[request.worker_id] = record
        status = self._running(record)
        self._statuses[request.worker_id] = status
        self._watch(record, self._watch_launched(record, launcher))
        await self._prepare_spare(launcher)
        return status

    async def _prepare_spare(self, launcher: Launcher) -> None:
        """Have the launcher start the next worker now, in a cgroup of its own, so that
        the next job does not wait for a fork and a cgroup join (see
        :mod:`hodei.worker.launcher`). Without one, the next worker is forked on demand.
        The cgroup is one an earlier worker left empty if there is one: making and
        removing one per job costs the event loop kernel time."""
        if self._spare is not None:
            return  # one is ready (or on its way): a second would replace it unused
        name = self._idle_cgroups.pop() if self._idle_cgroups else f"slot-{secrets.token_hex(4)}"
        self._spare = name  # before the send: a launch meanwhile takes it, in socket order
        try:
            cgroups = self._host_cgroups().prepare(name)
            await launcher.prepare(name, cgroups)
        except (LauncherError, OSError) as exc:
            log.info("local provider: no spare worker: %s", exc)
            if self._spare == name:
                self._spare = None
            self._host_cgroups().remove(name)

    def _ready_launcher(self) -> Launcher:
        """The launcher, started now if there is none or the last one exited."""
        if self._launcher is None or not self._launcher.connected:
            if self._launcher is not None:
                self._launcher.close()
            self._forget_spare()
            self._launcher = Launcher.spawn(self._command, self._env)
        return self._launcher

    def _forget_spare(self) -> None:
        """The spare went with its launcher; its directory goes too (once empty)."""
        if self._spare is not None and self._cgroups is not None:
            self._cgroups.remove(self._spare)
        self._spare = None

    def _release_cgroups(self, worker_id: WorkerId) -> None:
        """An ended worker's cgroups: kept for the next spare if they can serve it as
        they are, else removed."""
        name = self._cgroup_of.pop(worker_id, str(worker_id))
        if self._cgroups is None:
            return
        if self._cgroups.reusable(name):
            self._idle_cgroups.append(name)
        else:
            self._cgroups.remove(name)

    async def delete_worker(self, worker_id: WorkerId) -> None:
        """Let the worker leave, else SIGTERM it (it stops its job), else kill its session."""
        record = self._processes.get(worker_id)
        if record is None:
            return
        self._deleting.add(worker_id)
        watcher = self._watchers.get(worker_id)
        if watcher is not None and not watcher.done():
            # After delivering its result an agent leaves by itself within milliseconds.
            await asyncio.wait({watcher}, timeout=SELF_EXIT_WAIT)
        if watcher is not None and not watcher.done():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(record.pid, signal.SIGTERM)
            await asyncio.wait({watcher}, timeout=DELETE_GRACE)
            if not watcher.done():
                procfs.kill_session(record.pid)
                await asyncio.wait({watcher}, timeout=DELETE_GRACE)
        self._forget(worker_id)

    async def origin(self, worker_id: WorkerId, *, wait: float) -> Origin:
        """Processes on this host are not bound to an address (see :class:`Origin`)."""
        return ANYWHERE

    def status(self, worker_id: WorkerId) -> WorkerStatus | None:
        return self._statuses.get(worker_id)

    async def list_workers(self) -> list[WorkerStatus]:
        return [self._statuses[w] for w in self._processes if w in self._statuses]

    async def health(self) -> Health:
        executable = self._command[0]
        if shutil.which(executable) is None and not os.access(executable, os.X_OK):
            return Health(False, f"worker command {executable!r} not found")
        running = sum(1 for s in self._statuses.values() if s.phase is WorkerPhase.RUNNING)
        return Health(True, f"{running}/{self._max_workers} local workers")

    def _running(self, record: WorkerProcess) -> WorkerStatus:
        return WorkerStatus(
            worker_id=WorkerId(record.worker_id),
            job_id=JobId(record.job_id),
            phase=WorkerPhase.RUNNING,
            name=f"pid {record.pid}",
        )

    def _watch(self, record: WorkerProcess, watching: Coroutine[Any, Any, None]) -> None:
        """Follow the worker process until it exits; if following it fails, the worker
        is reported FAILED (WorkerLost), so its job is settled rather than left waiting."""
        worker_id = WorkerId(record.worker_id)

        async def lost(error: BaseException) -> None:
            status = WorkerStatus(
                worker_id,
                JobId(record.job_id),
                WorkerPhase.FAILED,
                reason=reasons.WORKER_LOST,
                message=f"watching worker process {record.pid} failed: "
                f"{type(error).__name__}: {error}",
                name=f"pid {record.pid}",
            )
            self._statuses[worker_id] = status
            await self._notify(status)

        self._watchers[worker_id] = self._loops.spawn(
            watching, name=f"local-watch-{worker_id}", kind="local-worker-watch", on_failure=lost
        )

    async def _watch_launched(self, record: WorkerProcess, launcher: Launcher) -> None:
        exit_code = await launcher.wait_exit(record.pid)
        if exit_code is None:  # the launcher is gone: watch the process itself
            await procfs.wait_exit(record.pid, record.start_time)
        if exit_code != 0:
            # The agent did not finish normally (after a clean exit its job is already
            # gone): whatever it left in its session must not outlive it.
            procfs.kill_session(record.pid)
        # Whatever escaped everything else is still in the worker's cgroup.
        self._host_cgroups().kill(self._cgroup_name(record.worker_id))
        await self._exited(record, exit_code)

    async def _watch_adopted(self, record: WorkerProcess) -> None:
        await procfs.wait_exit(record.pid, record.start_time)
        procfs.kill_session(record.pid)
        await self._exited(record, None)

    async def _exited(self, record: WorkerProcess, exit_code: int | None) -> None:
        worker_id = WorkerId(record.worker_id)
        if worker_id in self._deleting:
            status = WorkerStatus(worker_id, JobId(record.job_id), WorkerPhase.GONE)
        else:
            status = WorkerStatus(
                worker_id,
                JobId(record.job_id),
                WorkerPhase.EXITED,
                message=self._exit_message(record, exit_code),
                exit_code=exit_code,
                name=f"pid {record.pid}",
            )
        self._statuses[worker_id] = status
        # Nothing left to adopt; the log stays for the diagnosis until delete_worker.
        self._files.remove_record(worker_id)
        await self._notify(status)

    def _exit_message(self, record: WorkerProcess, exit_code: int | None) -> str:
        if self._host_cgroups().oom_killed(self._cgroup_name(record.worker_id)):
            return f"worker process {record.pid}: a process was killed for its memory limit"
        if exit_code == 0:
            return "worker process exited"
        code = "with an unknown status" if exit_code is None else f"with code {exit_code}"
        tail = self._log_tail(record.worker_id)
        return f"worker process {record.pid} exited {code}" + (f": {tail}" if tail else "")

    def _log_tail(self, worker_id: str) -> str:
        try:
            with open(self._files.log_path(worker_id), "rb") as file:
                file.seek(0, os.SEEK_END)
                file.seek(max(0, file.tell() - _TAIL_BYTES))
                return file.read().decode(errors="replace").strip()
        except OSError:
            return ""

    async def _notify(self, status: WorkerStatus) -> None:
        if self._listener is None:
            return
        try:
            await self._listener(status)
        except Exception:
            log.exception("status listener failed for worker %s", status.worker_id)

    def _forget(self, worker_id: WorkerId) -> None:
        self._processes.pop(worker_id, None)
        self._statuses.pop(worker_id, None)
        self._watchers.pop(worker_id, None)
        self._deleting.discard(worker_id)
        self._files.remove(worker_id)
        self._release_cgroups(worker_id)

    def _cgroup_name(self, worker_id: str) -> str:
        return self._cgroup_of.get(WorkerId(worker_id), worker_id)
