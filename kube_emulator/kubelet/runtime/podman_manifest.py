"""The Pod manifest handed to ``podman kube play`` for one emulated pod, built without I/O.

podman runs Kubernetes Pod YAML itself, so the emulator passes the pod on nearly as
given: image, the resolved argv and env, working directory, security contexts,
resource limits, init containers and a shared process namespace. What changes: host
networking (the container must reach servers on the host's 127.0.0.1, as a pod reaches
its cluster), volumes become host directories the
kubelet prepared (emptyDir semantics, shared between containers), images are never
pulled (no registry here), and the pod gets a name unique on the host.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from kube_emulator.kubelet.runtime.base import ContainerLaunch, PodLaunch

_KEPT_CONTAINER_FIELDS = ("securityContext", "workingDir", "ports", "stdin", "tty")
_KEPT_POD_SECURITY = ("runAsUser", "runAsGroup", "runAsNonRoot", "supplementalGroups", "fsGroup")


def podman_pod_name(launch: PodLaunch) -> str:
    """A DNS-label name unique per pod uid: ``<namespace>-<name>-<uid prefix>``."""
    raw = f"{launch.namespace}-{launch.name}"[:50]
    safe = re.sub(r"[^a-z0-9-]", "-", raw.lower()).strip("-")
    return f"{safe}-{launch.uid.replace('-', '')[:8]}"


def podman_container_name(pod_name: str, container: str) -> str:
    """The name ``podman kube play`` gives a pod's container."""
    return f"{pod_name}-{container}"


def _container(launch: ContainerLaunch, volumes: Mapping[str, str]) -> dict[str, Any]:
    spec = launch.spec
    body: dict[str, Any] = {
        "name": launch.name,
        "image": launch.image,
        "imagePullPolicy": "Never",
        "command": list(launch.argv),
        "env": [{"name": key, "value": value} for key, value in launch.env.items()],
    }
    for field in _KEPT_CONTAINER_FIELDS:
        if field in spec:
            body[field] = spec[field]
    limits = (spec.get("resources") or {}).get("limits")
    if limits:
        body["resources"] = {"limits": dict(limits)}
    mounts = [
        {
            "name": mount["name"],
            "mountPath": mount["mountPath"],
            **({"readOnly": True} if mount.get("readOnly") else {}),
        }
        for mount in spec.get("volumeMounts") or []
        if mount["name"] in volumes
    ]
    if mounts:
        body["volumeMounts"] = mounts
    return body


def pod_manifest(launch: PodLaunch) -> dict[str, Any]:
    """The ``kind: Pod`` document for ``podman kube play``."""
    volumes = {name: str(path) for name, path in launch.volumes.items()}
    pod_spec = launch.pod.get("spec") or {}
    security = {
        key: value
        for key, value in (pod_spec.get("securityContext") or {}).items()
        if key in _KEPT_POD_SECURITY
    }
    spec: dict[str, Any] = {
        "hostNetwork": True,
        "restartPolicy": "Never",
        "containers": [_container(c, volumes) for c in launch.containers],
    }
    if launch.init_containers:
        # podman runs them in order, each to its end, before the containers (`kube play`
        # fails if one fails and keeps that one for inspection).
        spec["initContainers"] = [_container(c, volumes) for c in launch.init_containers]
    if pod_spec.get("shareProcessNamespace"):
        spec["shareProcessNamespace"] = True
    if security:
        spec["securityContext"] = security
    if volumes:
        spec["volumes"] = [
            {"name": name, "hostPath": {"path": path, "type": "Directory"}}
            for name, path in volumes.items()
        ]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": podman_pod_name(launch),
            "labels": {"kube-emulator/uid": launch.uid},
        },
        "spec": spec,
    }
