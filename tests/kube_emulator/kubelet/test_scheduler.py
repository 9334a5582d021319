"""Placement and the scheduler's message, checked against kube-scheduler's documented shape."""

from __future__ import annotations

from typing import Any

from kube_emulator.kubelet.resources import Requests
from kube_emulator.kubelet.scheduler import Node, Taint, schedule, wants_scheduling

NODE = Node(
    name="emulator-node",
    allocatable=Requests(cpu_millis=2000, memory_bytes=4 * 2**30),
    labels={"kubernetes.io/hostname": "emulator-node", "kubernetes.io/os": "linux"},
    max_pods=3,
)


def pod(
    name: str = "p",
    *,
    cpu: str | None = None,
    memory: str | None = None,
    node: str | None = None,
    phase: str = "Pending",
    limits_only: bool = False,
    **spec: Any,
) -> dict[str, Any]:
    amounts = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v is not None}
    resources = {"limits": amounts} if limits_only else {"requests": amounts}
    body: dict[str, Any] = {
        "metadata": {"name": name, "namespace": "default", "uid": name},
        "spec": {"containers": [{"name": "c", "image": "x", "resources": resources}], **spec},
        "status": {"phase": phase},
    }
    if node:
        body["spec"]["nodeName"] = node
    return body


def test_a_pod_that_fits_is_bound_to_the_node() -> None:
    decision = schedule(pod(cpu="500m", memory="1Gi"), NODE, [])
    assert decision.node_name == "emulator-node"
    assert decision.message == ""


def test_insufficient_cpu_gives_the_schedulers_message() -> None:
    running = pod("a", cpu="1500m", node="emulator-node", phase="Running")
    decision = schedule(pod(cpu="1"), NODE, [running])
    assert decision.node_name is None
    assert decision.message == (
        "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: "
        "1 No preemption victims found for incoming pod."
    )


def test_both_resources_short_are_listed_sorted_in_one_histogram() -> None:
    decision = schedule(pod(cpu="3", memory="5Gi"), NODE, [])
    assert decision.message == (
        "0/1 nodes are available: 1 Insufficient cpu, 1 Insufficient memory. preemption: "
        "0/1 nodes are available: 1 No preemption victims found for incoming pod."
    )


def test_terminated_and_other_nodes_pods_hold_no_resources() -> None:
    others = [
        pod("done", cpu="2", node="emulator-node", phase="Succeeded"),
        pod("failed", cpu="2", node="emulator-node", phase="Failed"),
        pod("elsewhere", cpu="2", node="other-node", phase="Running"),
        pod("unbound", cpu="2"),
    ]
    assert schedule(pod(cpu="2"), NODE, others).bound


def test_requests_default_to_limits() -> None:
    running = pod("a", memory="3Gi", node="emulator-node", phase="Running", limits_only=True)
    decision = schedule(pod(memory="2Gi", limits_only=True), NODE, [running])
    assert "1 Insufficient memory." in decision.message


def test_a_pod_without_requests_always_fits_resources() -> None:
    running = pod("a", cpu="2", memory="4Gi", node="emulator-node", phase="Running")
    assert schedule(pod(), NODE, [running]).bound


def test_node_pod_count_limit() -> None:
    running = [pod(str(i), node="emulator-node", phase="Running") for i in range(3)]
    decision = schedule(pod(), NODE, running)
    assert decision.message.startswith("0/1 nodes are available: 1 Too many pods. ")


def test_node_selector_mismatch_is_not_helped_by_preemption() -> None:
    decision = schedule(pod(nodeSelector={"disktype": "ssd"}), NODE, [])
    assert decision.message == (
        "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector. "
        "preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."
    )
    assert schedule(pod(nodeSelector={"kubernetes.io/os": "linux"}), NODE, []).bound


def test_which_pods_the_scheduler_takes() -> None:
    assert wants_scheduling(pod())
    assert not wants_scheduling(pod(node="emulator-node"))
    assert not wants_scheduling(pod(schedulerName="other-scheduler"))
    deleted = pod()
    deleted["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert not wants_scheduling(deleted)


# -- node pools: labels, required node affinity, taints and tolerations --------------------

GPU_NODE = Node(
    name="emulator-node",
    allocatable=Requests(cpu_millis=2000, memory_bytes=4 * 2**30),
    labels={"kubernetes.io/hostname": "emulator-node", "pool": "gpu", "cores": "8"},
    taints=(
        Taint("nvidia.com/gpu", "present", "NoSchedule"),
        Taint("soft", "", "PreferNoSchedule"),
    ),
)
TOLERATE_GPU = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
NOT_MATCHED = (
    "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector. "
    "preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."
)


def required(*terms: dict[str, Any]) -> dict[str, Any]:
    return {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": list(terms)}
        }
    }


def expr(key: str, operator: str, *values: str) -> dict[str, Any]:
    return {"matchExpressions": [{"key": key, "operator": operator, "values": list(values)}]}


def test_an_untolerated_taint_keeps_the_pod_off_with_the_schedulers_message() -> None:
    decision = schedule(pod(), GPU_NODE, [])
    assert decision.node_name is None
    assert decision.message == (
        "0/1 nodes are available: 1 node(s) had untolerated taint {nvidia.com/gpu: present}. "
        "preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."
    )


def test_tolerations_match_as_kubernetes_defines_them() -> None:
    assert schedule(pod(tolerations=TOLERATE_GPU), GPU_NODE, []).bound
    equal = [{"key": "nvidia.com/gpu", "operator": "Equal", "value": "present"}]
    assert schedule(pod(tolerations=equal), GPU_NODE, []).bound  # no effect: any effect
    wrong_value = [{"key": "nvidia.com/gpu", "value": "absent", "effect": "NoSchedule"}]
    assert not schedule(pod(tolerations=wrong_value), GPU_NODE, []).bound
    wrong_effect = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoExecute"}]
    assert not schedule(pod(tolerations=wrong_effect), GPU_NODE, []).bound
    everything = [{"operator": "Exists"}]
    assert schedule(pod(tolerations=everything), GPU_NODE, []).bound


def test_node_selector_on_added_labels() -> None:
    assert schedule(pod(nodeSelector={"pool": "gpu"}, tolerations=TOLERATE_GPU), GPU_NODE, []).bound
    missing = schedule(pod(nodeSelector={"pool": "tpu"}, tolerations=TOLERATE_GPU), GPU_NODE, [])
    assert missing.message == NOT_MATCHED


def test_required_node_affinity_operators() -> None:
    def bound(*terms: dict[str, Any]) -> bool:
        return schedule(
            pod(affinity=required(*terms), tolerations=TOLERATE_GPU), GPU_NODE, []
        ).bound

    assert bound(expr("pool", "In", "gpu", "cpu"))
    assert not bound(expr("pool", "In", "cpu"))
    assert bound(expr("pool", "NotIn", "cpu"))
    assert not bound(expr("pool", "NotIn", "gpu"))
    assert bound(expr("pool", "Exists"))
    assert not bound(expr("zone", "Exists"))
    assert bound(expr("zone", "DoesNotExist"))
    assert bound(expr("cores", "Gt", "4")) and not bound(expr("cores", "Lt", "4"))
    assert bound(expr("zone", "In", "a"), expr("pool", "In", "gpu"))  # terms are ORed
    by_name = {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["other"]}]}
    assert not bound(by_name)
    decision = schedule(pod(affinity=required(expr("pool", "In", "cpu"))), GPU_NODE, [])
    assert decision.message == NOT_MATCHED  # affinity is judged before taints


def test_taint_parsing() -> None:
    assert Taint.parse("gpu=yes:NoSchedule") == Taint("gpu", "yes", "NoSchedule")
    assert Taint.parse("dedicated:NoExecute") == Taint("dedicated", "", "NoExecute")
    for bad in ("gpu", "gpu=yes:Never", ":NoSchedule"):
        try:
            Taint.parse(bad)
        except ValueError as exc:
            assert "KEY[=VALUE]:EFFECT" in str(exc)
        else:
            raise AssertionError(f"{bad!r} accepted")
