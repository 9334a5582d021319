"""The emulator's one Node object, as ``kubectl get nodes`` and the scheduler see it."""

from __future__ import annotations

import platform
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from kube_emulator.kubelet.context import NODE_IP
from kube_emulator.kubelet.resources import Requests
from kube_emulator.kubelet.scheduler import Node, Taint
from kube_emulator.kubelet.status import timestamp

MAX_PODS = 110
_ARCHES = {"x86_64": "amd64", "aarch64": "arm64"}


def node_labels(name: str) -> dict[str, str]:
    """The well-known labels every kubelet puts on its Node."""
    arch = _ARCHES.get(platform.machine(), platform.machine())
    return {
        "beta.kubernetes.io/arch": arch,
        "beta.kubernetes.io/os": "linux",
        "kubernetes.io/arch": arch,
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
    }


def scheduler_node(
    name: str,
    allocatable: Requests,
    *,
    labels: Mapping[str, str] | None = None,
    taints: tuple[Taint, ...] = (),
) -> Node:
    """The scheduler's view of the node: the well-known labels plus ``labels``."""
    return Node(
        name=name,
        allocatable=allocatable,
        labels={**node_labels(name), **(labels or {})},
        max_pods=MAX_PODS,
        taints=taints,
    )


def node_object(
    node: Node, *, cpu: str, memory: str, runtime: str, kubelet_version: str, now: datetime
) -> dict[str, Any]:
    """A Ready Node with ``cpu``/``memory`` as both capacity and allocatable."""
    name = node.name
    resources = {"cpu": cpu, "memory": memory, "pods": str(MAX_PODS)}
    since = timestamp(now)

    def condition(kind: str, status: str, reason: str, message: str) -> dict[str, Any]:
        return {
            "type": kind,
            "status": status,
            "reason": reason,
            "message": message,
            "lastHeartbeatTime": since,
            "lastTransitionTime": since,
        }

    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": dict(node.labels)},
        "spec": {"taints": [t.as_object() for t in node.taints]} if node.taints else {},
        "status": {
            "capacity": dict(resources),
            "allocatable": dict(resources),
            "conditions": [
                condition(
                    "MemoryPressure",
                    "False",
                    "KubeletHasSufficientMemory",
                    "kubelet has sufficient memory available",
                ),
                condition(
                    "DiskPressure",
                    "False",
                    "KubeletHasNoDiskPressure",
                    "kubelet has no disk pressure",
                ),
                condition(
                    "PIDPressure",
                    "False",
                    "KubeletHasSufficientPID",
                    "kubelet has sufficient PID available",
                ),
                condition("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
            ],
            "addresses": [
                {"type": "InternalIP", "address": NODE_IP},
                {"type": "Hostname", "address": name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "architecture": node_labels(name)["kubernetes.io/arch"],
                "operatingSystem": "linux",
                "osImage": "Kubernetes API emulator",
                "kernelVersion": platform.release(),
                "kubeletVersion": kubelet_version,
                "kubeProxyVersion": "",
                "containerRuntimeVersion": f"{runtime}://emulated",
                "machineID": "",
                "systemUUID": "",
                "bootID": "",
            },
        },
    }
