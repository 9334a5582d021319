"""From a pod spec to what a runtime runs: argv, env, working directory, volumes, limits.

This is the part of the kubelet between "the image is present" and "start the
container": it resolves the environment (which may fail with
``CreateContainerConfigError``), expands ``$(VAR)`` in command and args, and lays out the
pod's directory with one sub-directory per volume. The emulator's images carry no
entrypoint metadata, so a container without ``command`` cannot be started: it is reported
as ``CreateContainerError`` / ``no command specified``, which is what containerd says for
an image without an entrypoint.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kube_emulator.kubelet.env import (
    CREATE_CONTAINER_CONFIG_ERROR,
    ConfigError,
    EnvContext,
    container_env,
    expand,
)
from kube_emulator.kubelet.resources import memory_limit_bytes
from kube_emulator.kubelet.runtime.base import ContainerLaunch, PodLaunch
from kube_emulator.kubelet.volumes import MountError, volume_files, write_volume

CREATE_CONTAINER_ERROR = "CreateContainerError"
CONTAINER_CREATING = "ContainerCreating"  # waiting for its volumes (kubelet's reason)


class ContainerError(Exception):
    """A container that cannot be created yet: waiting ``reason`` with message ``str()``."""

    def __init__(self, container: str, reason: str, message: str) -> None:
        super().__init__(message)
        self.container = container
        self.reason = reason


def volume_dirs(pod: Mapping[str, Any], directory: Path) -> dict[str, Path]:
    """One directory per volume of the pod (emptyDir, and a placeholder for other kinds)."""
    return {
        volume["name"]: directory / "volumes" / volume["name"]
        for volume in (pod.get("spec") or {}).get("volumes") or []
    }


def working_dir(container: Mapping[str, Any], volumes: Mapping[str, Path], default: Path) -> Path:
    """The container's cwd on the host.

    A ``workingDir`` that is a volume's mountPath maps to that volume's directory; one that
    exists on the host is used as is; otherwise (and without one) the pod's directory.
    """
    wanted = container.get("workingDir")
    if not wanted:
        return default
    for mount in container.get("volumeMounts") or []:
        if os.path.normpath(mount["mountPath"]) == os.path.normpath(wanted):
            return volumes.get(mount["name"], default)
    return Path(wanted) if Path(wanted).is_dir() else default


def container_launch(
    container: Mapping[str, Any],
    *,
    context: EnvContext,
    volumes: Mapping[str, Path],
    directory: Path,
) -> ContainerLaunch:
    """Resolve one container; raises :class:`ContainerError`."""
    name = container["name"]
    try:
        env = container_env(container, context)
    except ConfigError as error:
        raise ContainerError(name, CREATE_CONTAINER_CONFIG_ERROR, str(error)) from error
    if not container.get("command"):
        raise ContainerError(name, CREATE_CONTAINER_ERROR, "no command specified")
    argv = [expand(str(part), env) for part in [*container["command"], *container.get("args", [])]]
    return ContainerLaunch(
        name=name,
        image=container.get("image", ""),
        argv=tuple(argv),
        env=env,
        working_dir=working_dir(container, volumes, directory),
        memory_limit=memory_limit_bytes(container),
        spec=container,
    )


def pod_launch(
    pod: Mapping[str, Any],
    *,
    context: EnvContext,
    directory: Path,
) -> PodLaunch:
    """Resolve every container of ``pod``; raises :class:`ContainerError` for the first bad one.

    Pure but for the paths it names; :func:`prepare_directories` creates them.
    """
    metadata = pod.get("metadata") or {}
    volumes = volume_dirs(pod, directory)
    try:
        files = volume_files(pod, context.lookup)
    except MountError as error:
        first = ((pod.get("spec") or {}).get("containers") or [{}])[0].get("name", "")
        raise ContainerError(first, CONTAINER_CREATING, str(error)) from error
    spec = pod.get("spec") or {}
    containers, init_containers = (
        tuple(
            container_launch(container, context=context, volumes=volumes, directory=directory)
            for container in spec.get(key) or []
        )
        for key in ("containers", "initContainers")
    )
    return PodLaunch(
        namespace=metadata.get("namespace", "default"),
        name=metadata.get("name", ""),
        uid=metadata.get("uid", ""),
        pod=pod,
        containers=containers,
        directory=directory,
        volumes=volumes,
        volume_files=files,
        init_containers=init_containers,
    )


def prepare_directories(launch: PodLaunch) -> None:
    """Create the pod's directory and its volumes' directories."""
    launch.directory.mkdir(parents=True, exist_ok=True)
    for name, path in launch.volumes.items():
        if name in launch.volume_files:
            files, mode = launch.volume_files[name]
            write_volume(path, files, mode)
            continue
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(0o777)  # an emptyDir is world-writable, so any runAsUser can use it
