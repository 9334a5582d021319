"""Container resource requests and limits as the scheduler and the kubelet read them.

The API server defaults a container's requests to its limits when only limits are given,
and both the scheduler's fit check and the pod's QoS class depend on that defaulting; the
emulator applies it here, when reading, so it holds whatever the stored object says.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from hodei.domain.quantities import QuantityError, cpu_millicores, memory_bytes

QosClass = Literal["Guaranteed", "Burstable", "BestEffort"]


@dataclass(frozen=True)
class Requests:
    """CPU (millicores) and memory (bytes) a pod asks the node for."""

    cpu_millis: int = 0
    memory_bytes: int = 0

    def __add__(self, other: Requests) -> Requests:
        return Requests(self.cpu_millis + other.cpu_millis, self.memory_bytes + other.memory_bytes)


def _quantity(resources: Mapping[str, Any], name: str) -> int:
    text = resources.get(name)
    if text is None:
        return 0
    try:
        if name == "cpu":
            return cpu_millicores(str(text))
        return memory_bytes(str(text))
    except QuantityError:
        return 0


def effective_requests(container: Mapping[str, Any]) -> Requests:
    """A container's requests, each one defaulting to its limit when unset."""
    resources = container.get("resources") or {}
    limits = resources.get("limits") or {}
    requests = {**limits, **(resources.get("requests") or {})}
    return Requests(_quantity(requests, "cpu"), _quantity(requests, "memory"))


def pod_requests(spec: Mapping[str, Any]) -> Requests:
    """Sum of the regular containers' requests, or the largest init container's if higher.

    Init containers run one at a time before the others, so the scheduler reserves the
    larger of the two, resource by resource.
    """
    total = Requests()
    for container in spec.get("containers") or []:
        total = total + effective_requests(container)
    for container in spec.get("initContainers") or []:
        init = effective_requests(container)
        total = Requests(
            max(total.cpu_millis, init.cpu_millis), max(total.memory_bytes, init.memory_bytes)
        )
    return total


def memory_limit_bytes(container: Mapping[str, Any]) -> int | None:
    """The container's memory limit in bytes, or None when it has none."""
    limits = (container.get("resources") or {}).get("limits") or {}
    if "memory" not in limits:
        return None
    return _quantity(limits, "memory") or None


def qos_class(spec: Mapping[str, Any]) -> QosClass:
    """The pod's QoS class, by the rules of the Kubernetes "Pod Quality of Service" page."""
    containers: Sequence[Mapping[str, Any]] = [
        *(spec.get("initContainers") or []),
        *(spec.get("containers") or []),
    ]
    any_set = False
    guaranteed = True
    for container in containers:
        resources = container.get("resources") or {}
        limits = resources.get("limits") or {}
        requests = {**limits, **(resources.get("requests") or {})}
        if requests or limits:
            any_set = True
        for name in ("cpu", "memory"):
            if name not in limits or _quantity(requests, name) != _quantity(limits, name):
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"
