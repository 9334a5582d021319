"""What the kubelet asks of a container runtime, whichever runs the containers.

The kubelet decides *what* runs (argv, env, directories, limits, already resolved from
the pod spec and the store); a runtime only runs it and says how it ended. Two exist: local
processes (fast, the default) and podman containers (real images). Both report a
container's end as a :class:`ContainerExit` carrying the kubelet's reason words, so the
status code above them is the same.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

COMPLETED = "Completed"
ERROR = "Error"
OOM_KILLED = "OOMKilled"
START_ERROR = "StartError"

# Output of one container: (container name, bytes as written, stdout and stderr interleaved).
LogSink = Callable[[str, bytes], None]


@dataclass(frozen=True)
class ContainerLaunch:
    """One container, ready to run."""

    name: str
    image: str
    argv: tuple[str, ...]
    env: Mapping[str, str]
    working_dir: Path
    memory_limit: int | None = None
    spec: Mapping[str, Any] = field(default_factory=dict)  # the container as the pod gives it


@dataclass(frozen=True)
class PodLaunch:
    """A pod's containers plus the directories the kubelet prepared for it."""

    namespace: str
    name: str
    uid: str
    pod: Mapping[str, Any]
    containers: tuple[ContainerLaunch, ...]
    directory: Path
    volumes: Mapping[str, Path] = field(default_factory=dict)  # emptyDir name -> directory
    # configMap/secret volume name -> (relative path -> content, file mode)
    volume_files: Mapping[str, tuple[Mapping[str, bytes], int]] = field(default_factory=dict)
    # Run one after the other, each to its end, before ``containers`` start; the first
    # that fails stops the pod (restartPolicy Never).
    init_containers: tuple[ContainerLaunch, ...] = ()


@dataclass(frozen=True)
class ContainerExit:
    """How a container ended: exit code (128+signal when killed) and the kubelet's reason."""

    exit_code: int
    reason: str
    finished_at: datetime
    message: str = ""


def exit_reason(exit_code: int, *, oom_killed: bool = False) -> str:
    """``Completed`` for 0, ``OOMKilled`` when the memory limit killed it, else ``Error``."""
    if oom_killed:
        return OOM_KILLED
    return COMPLETED if exit_code == 0 else ERROR


class ImageNotPresent(Exception):
    """The runtime does not have the image, although the node lists it (``str()``: the image)."""


class RunningContainer(Protocol):
    """A started container; ``wait`` returns once it has ended (its output fully sunk)."""

    @property
    def name(self) -> str: ...

    @property
    def container_id(self) -> str: ...

    @property
    def started_at(self) -> datetime: ...

    async def wait(self) -> ContainerExit: ...


class StartedContainer:
    """What every runtime's started container shares: its identity, start time and exit.

    A subclass sets ``_exit`` to the task that resolves when the container has ended.
    """

    _exit: asyncio.Task[ContainerExit]

    def __init__(self, name: str, container_id: str, started_at: datetime) -> None:
        self._name = name
        self._id = container_id
        self._started_at = started_at

    @property
    def name(self) -> str:
        return self._name

    @property
    def container_id(self) -> str:
        return self._id

    @property
    def started_at(self) -> datetime:
        return self._started_at

    @property
    def running(self) -> bool:
        return not self._exit.done()

    async def wait(self) -> ContainerExit:
        return await asyncio.shield(self._exit)


@dataclass(frozen=True)
class FailedStart:
    """A container the runtime could not start (e.g. its executable does not exist)."""

    name: str
    container_id: str
    exit: ContainerExit


class PodSandbox(Protocol):
    """The running pod: its containers, and how to stop and clean it up.

    ``init_exits`` says how each init container that ran ended; when one failed,
    ``containers`` is empty (none was started).
    """

    @property
    def containers(self) -> Mapping[str, RunningContainer | FailedStart]: ...

    @property
    def init_exits(self) -> Mapping[str, ContainerExit]: ...

    async def stop(self, grace_seconds: float) -> None:
        """SIGTERM every container's main process, SIGKILL what is left after the grace."""
        ...

    async def remove(self) -> None:
        """Release what the pod held (processes, podman pod); idempotent."""
        ...


class PodRuntime(Protocol):
    """Starts pods."""

    async def start_pod(self, launch: PodLaunch, sink: LogSink) -> PodSandbox:
        """Start every container; raises :class:`ImageNotPresent` before starting any."""
        ...

    async def close(self) -> None:
        """Stop background work the runtime itself runs (monitors)."""
        ...
