"""The ``podman`` runtime: each pod runs as a real podman pod through ``podman kube play``.

For tests that need the real image: the worker agent inside ``hodei:latest``, its user,
read-only root filesystem and volumes. The kubelet's view is the same as with processes:
containers start, stream output, end with an exit code and a reason. Facts about podman on
these machines (runc, cgroupfs, ulimits) are in ``scripts/podman-setup``.

Two gaps with a real node, both on the cgroup v1 hosts here: podman does not report
``OOMKilled``, so a container with a memory limit that dies of SIGKILL without the kubelet
having stopped it is reported OOMKilled (137); and ``podman pod stop`` signals every
container with the image's stop signal, then SIGKILL after the timeout, in whole seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from kube_emulator.kubelet.runtime.base import (
    START_ERROR,
    ContainerExit,
    ContainerLaunch,
    FailedStart,
    ImageNotPresent,
    LogSink,
    PodLaunch,
    RunningContainer,
    StartedContainer,
    exit_reason,
)
from kube_emulator.kubelet.runtime.podman_manifest import (
    pod_manifest,
    podman_container_name,
    podman_pod_name,
)

_DRAIN_SECONDS = 2.0
_START_ERROR = re.compile(r"starting container ([0-9a-f]{64}): (.*)")


@dataclass(frozen=True)
class Completed:
    """A finished podman command."""

    returncode: int
    stdout: str
    stderr: str


async def run_podman(podman: str, *args: str, cwd: Path | None = None) -> Completed:
    """Run one podman command to completion (in ``cwd``, else this process's directory)."""
    process = await asyncio.create_subprocess_exec(
        podman,
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=cwd,
    )
    try:
        out, err = await process.communicate()
    finally:
        # Cancelled (e.g. `podman wait` when the pod is torn down): don't leave podman running.
        if process.returncode is None:
            process.kill()
            await process.wait()
    return Completed(
        process.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace")
    )


def parse_time(text: str) -> datetime:
    """podman's RFC 3339 times carry nanoseconds; Python keeps microseconds."""
    match = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)?", text)
    if match is None:
        return datetime.now(UTC)
    fraction = (match.group(2) or ".0")[:7]
    zone = match.group(3) or "Z"
    moment = datetime.fromisoformat(match.group(1) + fraction + ("+00:00" if zone == "Z" else zone))
    return moment.astimezone(UTC)


def start_errors(stderr: str) -> dict[str, str]:
    """Container id -> runtime error, from the output of a ``kube play`` that failed a start."""
    errors: dict[str, str] = {}
    for line in stderr.splitlines():
        match = _START_ERROR.search(line.strip().strip("[]"))
        if match:
            errors[match.group(1)] = match.group(2)
    return errors


class PodmanContainer(StartedContainer):
    """A started container: its log follower and its exit."""

    def __init__(
        self,
        podman: str,
        name: str,
        state: Mapping[str, Any],
        launch: ContainerLaunch,
        sink: LogSink,
    ) -> None:
        started_at = parse_time(str(state["State"].get("StartedAt", "")))
        super().__init__(launch.name, f"podman://{state['Id']}", started_at)
        self._podman = podman
        self._podman_name = name
        self._limited = launch.memory_limit is not None
        self.stopping = False
        loop = asyncio.get_running_loop()
        self._logs = loop.create_task(self._follow_logs(sink))
        self._exit = loop.create_task(self._wait())

    async def _follow_logs(self, sink: LogSink) -> None:
        process = await asyncio.create_subprocess_exec(
            self._podman,
            "logs",
            "--follow",
            self._podman_name,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        assert process.stdout is not None
        try:
            while chunk := await process.stdout.read(64 * 1024):
                sink(self._name, chunk)
            await process.wait()
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()

    async def _wait(self) -> ContainerExit:
        await run_podman(self._podman, "wait", self._podman_name)
        inspected = await run_podman(self._podman, "inspect", "--format", "json", self._podman_name)
        state = (json.loads(inspected.stdout or "[{}]") or [{}])[0].get("State", {})
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._logs), _DRAIN_SECONDS)
        exit_code = int(state.get("ExitCode", 137))
        oom = bool(state.get("OOMKilled")) or (
            exit_code == 137 and self._limited and not self.stopping
        )
        return ContainerExit(
            exit_code=exit_code,
            reason=exit_reason(exit_code, oom_killed=oom),
            finished_at=parse_time(str(state.get("FinishedAt", ""))),
        )

    async def close(self) -> None:
        self._logs.cancel()
        self._exit.cancel()
        await asyncio.gather(self._logs, self._exit, return_exceptions=True)


class PodmanSandbox:
    """A podman pod and its containers."""

    def __init__(
        self,
        podman: str,
        pod_name: str,
        manifest: Path,
        containers: Mapping[str, PodmanContainer | FailedStart],
        init_exits: Mapping[str, ContainerExit] | None = None,
    ) -> None:
        self._podman = podman
        self._pod_name = pod_name
        self._manifest = manifest
        self._containers = dict(containers)
        self._init_exits = dict(init_exits or {})

    @property
    def containers(self) -> Mapping[str, RunningContainer | FailedStart]:
        return self._containers

    @property
    def init_exits(self) -> Mapping[str, ContainerExit]:
        return self._init_exits

    def _running(self) -> list[PodmanContainer]:
        return [
            c for c in self._containers.values() if isinstance(c, PodmanContainer) and c.running
        ]

    async def stop(self, grace_seconds: float) -> None:
        running = self._running()
        for container in running:
            container.stopping = True
        timeout = str(max(0, math.ceil(grace_seconds)))
        await run_podman(self._podman, "pod", "stop", "--time", timeout, self._pod_name)
        await asyncio.gather(*(c.wait() for c in running), return_exceptions=True)

    async def remove(self) -> None:
        for running in self._running():
            running.stopping = True
        await run_podman(self._podman, "pod", "rm", "--force", "--time", "0", self._pod_name)
        for container in self._containers.values():
            if isinstance(container, PodmanContainer):
                await container.close()
        self._manifest.unlink(missing_ok=True)


class PodmanRuntime:
    """Starts pods with ``podman kube play`` from manifests written under ``workdir``."""

    def __init__(self, *, workdir: Path, podman: str = "podman") -> None:
        self._workdir = workdir
        self._podman = podman

    async def start_pod(self, launch: PodLaunch, sink: LogSink) -> PodmanSandbox:
        for container in (*launch.init_containers, *launch.containers):
            exists = await run_podman(self._podman, "image", "exists", container.image)
            if exists.returncode != 0:
                raise ImageNotPresent(container.image)
        pod_name = podman_pod_name(launch)
        self._workdir.mkdir(parents=True, exist_ok=True)
        manifest = self._workdir / f"{pod_name}.yaml"
        manifest.write_text(yaml.safe_dump(pod_manifest(launch), sort_keys=False))
        # conmon, which kube play leaves watching each container, works in the directory it
        # was started from and drops a file named "oom" there when the kernel OOM-kills a
        # container: keep that in the runtime's own directory.
        played = await run_podman(self._podman, "kube", "play", str(manifest), cwd=self._workdir)
        init_exits = await self._init_exits(pod_name, launch, sink)
        if any(exit.exit_code != 0 for exit in init_exits.values()):
            return PodmanSandbox(self._podman, pod_name, manifest, {}, init_exits)
        failures = start_errors(played.stderr)
        containers: dict[str, PodmanContainer | FailedStart] = {}
        for container in launch.containers:
            name = podman_container_name(pod_name, container.name)
            inspected = await run_podman(self._podman, "inspect", "--format", "json", name)
            states: list[dict[str, Any]] = json.loads(inspected.stdout or "[]") or []
            if not states:
                message = played.stderr.strip() or f"podman created no container {name}"
                containers[container.name] = _failed(container.name, "", message)
            elif states[0]["Id"] in failures:
                cid = states[0]["Id"]
                containers[container.name] = _failed(container.name, cid, failures[cid])
            else:
                containers[container.name] = PodmanContainer(
                    self._podman, name, states[0], container, sink
                )
        return PodmanSandbox(self._podman, pod_name, manifest, containers, init_exits)

    async def _init_exits(
        self, pod_name: str, launch: PodLaunch, sink: LogSink
    ) -> dict[str, ContainerExit]:
        """How the init containers ended: podman removes those that succeeded and keeps
        the one that failed (``kube play`` then starts nothing more)."""
        exits: dict[str, ContainerExit] = {}
        for init in launch.init_containers:
            name = podman_container_name(pod_name, init.name)
            inspected = await run_podman(self._podman, "inspect", "--format", "json", name)
            states: list[dict[str, Any]] = json.loads(inspected.stdout or "[]") or []
            if not states:
                exits[init.name] = ContainerExit(0, exit_reason(0), datetime.now(UTC))
                continue
            state = states[0].get("State", {})
            code = int(state.get("ExitCode", 0))
            logs = await run_podman(self._podman, "logs", name)
            output = (logs.stdout + logs.stderr).encode()
            if output:
                sink(init.name, output)
            exits[init.name] = ContainerExit(
                code,
                exit_reason(code),
                parse_time(str(state.get("FinishedAt", ""))),
                message=(state.get("Error") or "") if code else "",
            )
            if code != 0:
                break
        return exits

    async def close(self) -> None:
        """Nothing runs outside the pods, which the kubelet removes one by one."""


def _failed(name: str, podman_id: str, message: str) -> FailedStart:
    exit = ContainerExit(
        exit_code=128, reason=START_ERROR, finished_at=datetime.now(UTC), message=message
    )
    return FailedStart(name, f"podman://{podman_id}" if podman_id else "", exit)
