"""The scheduler's decision for the emulator's single node, without I/O.

kube-scheduler filters nodes, then explains a failure as a histogram of reasons over all
nodes followed by what preemption concluded. Hodei turns that message into a job's
failure reason, so the emulator reproduces its exact shape, e.g.::

    0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available:
    1 No preemption victims found for incoming pod.

(one line). Filters run in kube-scheduler's order and stop at the first that fails, as
they do there: node selector and required node affinity (NodeAffinity), then taints the
pod does not tolerate (TaintToleration), then resources. Node affinity's expressions and
toleration matching follow the Kubernetes API reference for ``NodeSelectorRequirement``
and ``Toleration``.
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
class Taint:
    """A node taint: pods that do not tolerate it are kept off (``NoSchedule``, ``NoExecute``)."""

    key: str
    value: str = ""
    effect: str = "NoSchedule"

    @classmethod
    def parse(cls, text: str) -> Taint:
        """``KEY[=VALUE]:EFFECT`` as ``kubectl taint`` writes it; ValueError otherwise."""
        pair, colon, effect = text.rpartition(":")
        key, _, value = pair.partition("=")
        if not colon or not key or effect not in TAINT_EFFECTS:
            raise ValueError(
                f"taint {text!r}: accepted KEY[=VALUE]:EFFECT, EFFECT one of "
                + ", ".join(TAINT_EFFECTS)
            )
        return cls(key, value, effect)

    def as_object(self) -> dict[str, str]:
        return {"key": self.key, "value": self.value, "effect": self.effect}


TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")


@dataclass(frozen=True)
class Node:
    """The node's name, labels, taints and allocatable resources."""

    name: str
    allocatable: Requests
    labels: Mapping[str, str]
    max_pods: int = 110
    taints: tuple[Taint, ...] = ()
    unschedulable: bool = False  # cordoned (``kubectl cordon``: spec.unschedulable)


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
    if node.unschedulable:  # kube-scheduler's NodeUnschedulable filter comes first
        return _unschedulable(["node(s) were unschedulable"], _NOT_HELPFUL)
    selector = spec.get("nodeSelector") or {}
    if any(node.labels.get(key) != value for key, value in selector.items()) or not (
        _affinity_matches(spec, node)
    ):
        return _unschedulable(["node(s) didn't match Pod's node affinity/selector"], _NOT_HELPFUL)
    untolerated = _untolerated(spec, node)
    if untolerated is not None:
        taint = f"{{{untolerated.key}: {untolerated.value}}}"
        return _unschedulable([f"node(s) had untolerated taint {taint}"], _NOT_HELPFUL)
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


def _requirement_matches(requirement: Mapping[str, Any], values: Mapping[str, str]) -> bool:
    key, operator = requirement.get("key", ""), requirement.get("operator", "")
    wanted = [str(v) for v in requirement.get("values") or []]
    present = key in values
    if operator == "In":
        return present and values[key] in wanted
    if operator == "NotIn":
        return not present or values[key] not in wanted
    if operator == "Exists":
        return present
    if operator == "DoesNotExist":
        return not present
    if operator in ("Gt", "Lt") and present and len(wanted) == 1:
        try:
            have, bound = int(values[key]), int(wanted[0])
        except ValueError:
            return False
        return have > bound if operator == "Gt" else have < bound
    return False


def _affinity_matches(spec: Mapping[str, Any], node: Node) -> bool:
    """requiredDuringSchedulingIgnoredDuringExecution: any term whose requirements all hold."""
    required = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    terms = required.get("nodeSelectorTerms")
    if not terms:
        return True
    fields = {"metadata.name": node.name}
    return any(
        (term.get("matchExpressions") or term.get("matchFields"))
        and all(_requirement_matches(r, node.labels) for r in term.get("matchExpressions") or [])
        and all(_requirement_matches(r, fields) for r in term.get("matchFields") or [])
        for term in terms
    )


def _tolerates(toleration: Mapping[str, Any], taint: Taint) -> bool:
    effect = toleration.get("effect") or ""
    if effect and effect != taint.effect:
        return False
    key = toleration.get("key") or ""
    if toleration.get("operator", "Equal") == "Exists":
        return not key or key == taint.key
    return key == taint.key and (toleration.get("value") or "") == taint.value


def _untolerated(spec: Mapping[str, Any], node: Node) -> Taint | None:
    """The first NoSchedule/NoExecute taint no toleration of the pod matches."""
    tolerations = spec.get("tolerations") or []
    for taint in node.taints:
        if taint.effect == "PreferNoSchedule":
            continue
        if not any(_tolerates(t, taint) for t in tolerations):
            return taint
    return None


def _unschedulable(reasons: list[str], preemption: str) -> Decision:
    # One node, so every count is 1; kube-scheduler sorts the histogram's lines.
    histogram = ", ".join(f"1 {reason}" for reason in sorted(reasons))
    message = (
        f"0/1 nodes are available: {histogram}. "
        f"preemption: 0/1 nodes are available: 1 {preemption}."
    )
    return Decision(None, message)
