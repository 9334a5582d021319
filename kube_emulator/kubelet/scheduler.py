"""The scheduler's decision for the emulator's single node, without I/O.

kube-scheduler filters nodes, then explains a failure as a histogram of reasons over all
nodes followed by what preemption concluded. Hodei turns that message into a job's
failure reason, so the emulator reproduces its exact shape, e.g.::

    0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available:
    1 No preemption victims found for incoming pod.

(one line). Filters run in kube-scheduler's order and stop at the first that fails, as
they do there: node selector before resources.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kube_emulator.kubelet.resources import Requests, pod_requests

DEFAULT_SCHEDULER = "default-scheduler"
TERMINAL_PHASES = frozenset({"Succeeded", "Failed"})

_NO_VICTIMS = "No preemption victims found for incoming pod"
_NOT_HELPFUL = "Preemption is not helpful for scheduling"


@dataclass(frozen=True)
class Node:
    """The node's name, labels and allocatable resources."""

    name: str
    allocatable: Requests
    labels: Mapping[str, str]
    max_pods: int = 110


@dataclass(frozen=True)
class Decision:
    """Bind to ``node_name``, or stay pending with the scheduler's ``message``."""

    node_name: str | None
    message: str = ""

    @property
    def bound(self) -> bool:
        return self.node_name is not None


def wants_scheduling(pod: Mapping[str, Any]) -> bool:
    """True for a pod this scheduler must place: unbound, not deleted, default scheduler."""
    spec = pod.get("spec") or {}
    return (
        not spec.get("nodeName")
        and not (pod.get("metadata") or {}).get("deletionTimestamp")
        and spec.get("schedulerName", DEFAULT_SCHEDULER) == DEFAULT_SCHEDULER
        and (pod.get("status") or {}).get("phase") not in TERMINAL_PHASES
    )


def occupies(pod: Mapping[str, Any], node_name: str) -> bool:
    """True when the pod holds resources on the node: bound there and not terminated."""
    return (pod.get("spec") or {}).get("nodeName") == node_name and (pod.get("status") or {}).get(
        "phase"
    ) not in TERMINAL_PHASES


def schedule(
    pod: Mapping[str, Any], node: Node, bound_pods: Iterable[Mapping[str, Any]]
) -> Decision:
    """Decide where ``pod`` goes given the pods already on ``node``."""
    spec = pod.get("spec") or {}
    selector = spec.get("nodeSelector") or {}
    if any(node.labels.get(key) != value for key, value in selector.items()):
        return _unschedulable(["node(s) didn't match Pod's node affinity/selector"], _NOT_HELPFUL)
    used = Requests()
    count = 0
    for other in bound_pods:
        if occupies(other, node.name):
            used = used + pod_requests(other.get("spec") or {})
            count += 1
    wanted = pod_requests(spec)
    reasons = []
    if count + 1 > node.max_pods:
        reasons.append("Too many pods")
    if wanted.cpu_millis and used.cpu_millis + wanted.cpu_millis > node.allocatable.cpu_millis:
        reasons.append("Insufficient cpu")
    if wanted.memory_bytes and (
        used.memory_bytes + wanted.memory_bytes > node.allocatable.memory_bytes
    ):
        reasons.append("Insufficient memory")
    if reasons:
        return _unschedulable(reasons, _NO_VICTIMS)
    return Decision(node.name)


def _unschedulable(reasons: list[str], preemption: str) -> Decision:
    # One node, so every count is 1; kube-scheduler sorts the histogram's lines.
    histogram = ", ".join(f"1 {reason}" for reason in sorted(reasons))
    message = (
        f"0/1 nodes are available: {histogram}. "
        f"preemption: 0/1 nodes are available: 1 {preemption}."
    )
    return Decision(None, message)
