"""The ``process`` runtime: each container is a local process in a session of its own.

Fast enough for hundreds of pods in a test run, and enough for what Hodei's provider
observes: argv, env and working directory as the pod says, output into ``pods/log``, exit
codes, memory limits (see :mod:`.memory`) and signals on deletion. There is no image
filesystem, no user switch and no network isolation: the command runs from the host's
PATH, which is why the emulator passes the host's PATH and HOME into the environment.

Signals follow the container runtime: SIGTERM goes to the main process only (a
container's PID 1); when the main process ends, or on SIGKILL, every process below it dies
too, as a container's processes do when its PID 1 exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import signal
import subprocess
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from kube_emulator.kubelet.runtime import procfs
from kube_emulator.kubelet.runtime.base import (
    START_ERROR,
    ContainerExit,
    ContainerLaunch,
    FailedStart,
    LogSink,
    PodLaunch,
    RunningContainer,
    StartedContainer,
    exit_reason,
)
from kube_emulator.kubelet.runtime.memory import MemoryWatcher

# How long output may keep trickling in after the main process ended (an orphan that
# escaped the process tree may hold the pipe open forever).
_DRAIN_SECONDS = 1.0


def host_env(environ: Mapping[str, str]) -> dict[str, str]:
    """What a container inherits from the emulator process: PATH and HOME only."""
    return {key: environ[key] for key in ("PATH", "HOME") if key in environ}


def mapped_env(
    env: Mapping[str, str], mounts: object, volumes: Mapping[str, Path]
) -> dict[str, str]:
    """``env`` with paths under a volume's ``mountPath`` moved to the volume's directory.

    Without a mount namespace a process cannot see ``/etc/hodei/ca/ca.crt`` where the pod
    mounts it; a variable naming a file in a mounted volume (as Hodei's agent is told where
    its CA is) names the same file in the volume's host directory instead.
    """
    mapped = dict(env)
    for mount in mounts if isinstance(mounts, list) else ():
        where = volumes.get(mount.get("name", ""))
        root = os.path.normpath(str(mount.get("mountPath", "")))
        if where is None or root in ("", "/", "."):
            continue
        for key, value in mapped.items():
            if value == root or value.startswith(root + "/"):
                mapped[key] = str(where) + value[len(root) :]
    return mapped


def container_id(launch: PodLaunch, name: str) -> str:
    """A containerd-shaped id, stable for one pod uid and container name."""
    digest = hashlib.sha256(f"{launch.uid}/{name}".encode()).hexdigest()
    return f"containerd://{digest}"


def start_error_message(executable: str, error: OSError) -> str:
    """The message runc gives when a container's executable cannot be started."""
    cause = (
        "executable file not found in $PATH"
        if isinstance(error, FileNotFoundError)
        else (error.strerror or str(error)).lower()
    )
    return (
        "failed to create containerd task: failed to create shim task: OCI runtime create "
        "failed: runc create failed: unable to start container process: error during "
        f'container init: exec: "{executable}": {cause}: unknown'
    )


def _kill_tree(root: int) -> None:
    stats = procfs.read_all()
    for pid in procfs.descendants(stats, root) | {root}:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


class _Protocol(asyncio.SubprocessProtocol):
    """Output straight into the sink; separate signals for "main process exited" and
    "output closed" (asyncio's ``Process.wait`` waits for both, which never happens while
    a background child holds the pipe)."""

    def __init__(self, name: str, sink: LogSink) -> None:
        loop = asyncio.get_running_loop()
        self._name = name
        self._sink = sink
        self.exited: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()

    def pipe_data_received(self, fd: int, data: bytes | bytearray | memoryview) -> None:
        self._sink(self._name, bytes(data))

    def process_exited(self) -> None:
        if not self.exited.done():
            self.exited.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


class ProcessContainer(StartedContainer):
    """One container's main process, its output and its memory watch."""

    def __init__(
        self,
        name: str,
        container_id: str,
        transport: asyncio.SubprocessTransport,
        protocol: _Protocol,
        *,
        memory_limit: int | None = None,
        watcher: MemoryWatcher,
    ) -> None:
        super().__init__(name, container_id, datetime.now(UTC))
        self._transport = transport
        self._protocol = protocol
        self._pid: int = transport.get_pid()
        self._oom_killed = False
        self._watcher = watcher
        if memory_limit is not None:
            watcher.watch(self._pid, memory_limit, self.out_of_memory)
        self._exit = asyncio.get_running_loop().create_task(self._wait())

    @property
    def pid(self) -> int:
        return self._pid

    def terminate(self) -> None:
        """SIGTERM to the main process, as the runtime signals a container's PID 1."""
        if not self._protocol.exited.done():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._pid, signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL the main process and every process below it."""
        _kill_tree(self._pid)

    def out_of_memory(self) -> None:
        self._oom_killed = True
        self.kill()

    async def _wait(self) -> ContainerExit:
        await self._protocol.exited
        returncode = self._transport.get_returncode()
        assert returncode is not None
        self._watcher.unwatch(self._pid)
        # The container ends with its main process: take the rest of the tree down too.
        await asyncio.to_thread(_kill_tree, self._pid)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._protocol.closed), _DRAIN_SECONDS)
        self._transport.close()
        exit_code = returncode if returncode >= 0 else 128 - returncode
        return ContainerExit(
            exit_code=137 if self._oom_killed else exit_code,
            reason=exit_reason(exit_code, oom_killed=self._oom_killed),
            finished_at=datetime.now(UTC),
        )


class ProcessSandbox:
    """A pod whose containers are local processes."""

    def __init__(
        self,
        containers: Mapping[str, ProcessContainer | FailedStart],
        init_exits: Mapping[str, ContainerExit] | None = None,
    ) -> None:
        self._containers = dict(containers)
        self._init_exits = dict(init_exits or {})

    @property
    def containers(self) -> Mapping[str, RunningContainer | FailedStart]:
        return self._containers

    @property
    def init_exits(self) -> Mapping[str, ContainerExit]:
        return self._init_exits

    def _running(self) -> list[ProcessContainer]:
        return [
            c for c in self._containers.values() if isinstance(c, ProcessContainer) and c.running
        ]

    async def stop(self, grace_seconds: float) -> None:
        running = self._running()
        for container in running:
            container.terminate()
        waits = [asyncio.ensure_future(c.wait()) for c in running]
        if waits:
            await asyncio.wait(waits, timeout=max(grace_seconds, 0))
            for container in self._running():
                container.kill()
            await asyncio.gather(*waits)

    async def remove(self) -> None:
        running = self._running()
        for container in running:
            container.kill()
        await asyncio.gather(*(c.wait() for c in running))


class ProcessRuntime:
    """Runs each container with ``asyncio`` subprocesses in a new session."""

    def __init__(
        self, *, base_env: Mapping[str, str] | None = None, memory_interval: float = 0.1
    ) -> None:
        self._base_env = dict(base_env or {})
        self._watcher = MemoryWatcher(interval=memory_interval)

    async def start_pod(self, launch: PodLaunch, sink: LogSink) -> ProcessSandbox:
        init_exits: dict[str, ContainerExit] = {}
        for init in launch.init_containers:
            started = await self._start(launch, init, sink)
            exit = started.exit if isinstance(started, FailedStart) else await started.wait()
            init_exits[init.name] = exit
            if exit.exit_code != 0:
                return ProcessSandbox({}, init_exits)
        containers: dict[str, ProcessContainer | FailedStart] = {}
        for container in launch.containers:
            containers[container.name] = await self._start(launch, container, sink)
        return ProcessSandbox(containers, init_exits)

    async def _start(
        self, launch: PodLaunch, container: ContainerLaunch, sink: LogSink
    ) -> ProcessContainer | FailedStart:
        cid = container_id(launch, container.name)
        loop = asyncio.get_running_loop()
        try:
            transport, protocol = await loop.subprocess_exec(
                lambda: _Protocol(container.name, sink),
                *container.argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env={
                    **self._base_env,
                    "HOSTNAME": launch.name,
                    **mapped_env(container.env, container.spec.get("volumeMounts"), launch.volumes),
                },
                cwd=container.working_dir,
                start_new_session=True,
            )
        except OSError as error:
            exit = ContainerExit(
                exit_code=128,
                reason=START_ERROR,
                finished_at=datetime.now(UTC),
                message=start_error_message(container.argv[0], error),
            )
            return FailedStart(container.name, cid, exit)
        return ProcessContainer(
            container.name,
            cid,
            transport,
            protocol,
            memory_limit=container.memory_limit,
            watcher=self._watcher,
        )

    async def close(self) -> None:
        await self._watcher.close()
