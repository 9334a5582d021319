"""Pod status as the kubelet writes it, field by field, for each step of a pod's life.

Expected values follow the Kubernetes "Pod Lifecycle" page (phases, container states,
conditions and their reasons) and the status a 1.33 kubelet writes for restartPolicy Never.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from kube_emulator.kubelet.status import (
    ContainerRecord,
    PodRecord,
    Running,
    Terminated,
    Waiting,
    pod_status,
    unschedulable_status,
)

T0 = datetime(2026, 11, 27, 5, 0, 0, tzinfo=UTC)
T1 = T0 + timedelta(seconds=2)
T2 = T0 + timedelta(seconds=5)
CID = "containerd://" + "ab" * 32
SCHEDULED = {
    "type": "PodScheduled",
    "status": "True",
    "lastProbeTime": None,
    "lastTransitionTime": "2026-11-27T04:59:59Z",
}


def pod(status: dict[str, Any] | None = None, **resources: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "p", "namespace": "default", "uid": "u"},
        "spec": {
            "containers": [{"name": "main", "image": "busybox", "resources": resources}],
            "nodeName": "emulator-node",
        },
        "status": status or {"phase": "Pending", "conditions": [SCHEDULED]},
    }


def record(state: Any, *, sandbox: bool = True, **extra: Any) -> PodRecord:
    return PodRecord(
        containers=(ContainerRecord("main", "busybox", state, CID if sandbox else ""),),
        start_time=T0,
        sandbox_ready=sandbox,
        pod_ip="127.0.0.1" if sandbox else "",
        **extra,
    )


def condition(
    kind: str, status: str, at: str = "2026-11-27T05:00:00Z", **more: str
) -> dict[str, Any]:
    return {"type": kind, "status": status, **more, "lastProbeTime": None, "lastTransitionTime": at}


def test_pending_while_the_container_is_created() -> None:
    status = pod_status(pod(), record(Waiting("ContainerCreating"), sandbox=False), T0)
    assert status == {
        "phase": "Pending",
        "conditions": [
            condition("PodReadyToStartContainers", "False"),
            condition("Initialized", "True"),
            condition(
                "Ready",
                "False",
                reason="ContainersNotReady",
                message="containers with unready status: [main]",
            ),
            condition(
                "ContainersReady",
                "False",
                reason="ContainersNotReady",
                message="containers with unready status: [main]",
            ),
            SCHEDULED,
        ],
        "hostIP": "127.0.0.1",
        "hostIPs": [{"ip": "127.0.0.1"}],
        "startTime": "2026-11-27T05:00:00Z",
        "containerStatuses": [
            {
                "name": "main",
                "image": "busybox",
                "imageID": "",
                "ready": False,
                "restartCount": 0,
                "started": False,
                "state": {"waiting": {"reason": "ContainerCreating"}},
                "lastState": {},
            }
        ],
        "qosClass": "BestEffort",
    }


def test_running_container_is_ready_with_its_start_time() -> None:
    before = pod_status(pod(), record(Waiting("ContainerCreating"), sandbox=False), T0)
    status = pod_status(pod(before), record(Running(T1)), T1)
    assert status["phase"] == "Running"
    assert status["podIP"] == "127.0.0.1"
    assert status["podIPs"] == [{"ip": "127.0.0.1"}]
    (container,) = status["containerStatuses"]
    assert container["state"] == {"running": {"startedAt": "2026-11-27T05:00:02Z"}}
    assert container["ready"] is True
    assert container["started"] is True
    assert container["containerID"] == CID
    assert container["image"] == "docker.io/library/busybox:latest"
    assert container["imageID"].startswith("docker.io/library/busybox@sha256:")
    at1 = "2026-11-27T05:00:02Z"
    assert status["conditions"] == [
        condition("PodReadyToStartContainers", "True", at1),
        condition("Initialized", "True"),  # unchanged since T0: transition time kept
        condition("Ready", "True", at1),
        condition("ContainersReady", "True", at1),
        SCHEDULED,
    ]


def test_succeeded_pod_reports_completed_container_and_pod_completed_conditions() -> None:
    state = Terminated(exit_code=0, reason="Completed", finished_at=T2, started_at=T1)
    status = pod_status(pod(), record(state), T2)
    assert status["phase"] == "Succeeded"
    (container,) = status["containerStatuses"]
    assert container["state"] == {
        "terminated": {
            "containerID": CID,
            "exitCode": 0,
            "reason": "Completed",
            "startedAt": "2026-11-27T05:00:02Z",
            "finishedAt": "2026-11-27T05:00:05Z",
        }
    }
    assert container["ready"] is False
    assert container["started"] is False
    kinds = {c["type"]: c for c in status["conditions"]}
    assert kinds["PodReadyToStartContainers"]["status"] == "False"
    assert kinds["Initialized"]["reason"] == "PodCompleted"
    assert kinds["Ready"]["reason"] == "PodCompleted"
    assert kinds["ContainersReady"] == condition(
        "ContainersReady", "False", "2026-11-27T05:00:05Z", reason="PodCompleted"
    )


def test_non_zero_exit_fails_the_pod_with_reason_error() -> None:
    state = Terminated(exit_code=3, reason="Error", finished_at=T2, started_at=T1)
    status = pod_status(pod(), record(state), T2)
    assert status["phase"] == "Failed"
    assert status["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 3
    assert status["containerStatuses"][0]["state"]["terminated"]["reason"] == "Error"
    kinds = {c["type"]: c for c in status["conditions"]}
    assert kinds["Ready"]["reason"] == "PodFailed"
    assert "reason" not in kinds["Initialized"]
    assert "reason" not in status


def test_oom_killed_container() -> None:
    state = Terminated(exit_code=137, reason="OOMKilled", finished_at=T2, started_at=T1)
    status = pod_status(pod(limits={"memory": "64Mi"}), record(state), T2)
    assert status["phase"] == "Failed"
    assert status["containerStatuses"][0]["state"]["terminated"]["reason"] == "OOMKilled"
    assert status["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 137
    assert status["containerStatuses"][0]["resources"] == {"limits": {"memory": "64Mi"}}
    assert status["qosClass"] == "Burstable"


def test_deadline_exceeded_is_a_pod_level_failure() -> None:
    state = Terminated(exit_code=143, reason="Error", finished_at=T2, started_at=T1)
    status = pod_status(
        pod(),
        record(
            state,
            failed_reason="DeadlineExceeded",
            failed_message="Pod was active on the node longer than the specified deadline",
        ),
        T2,
    )
    assert status["phase"] == "Failed"
    assert status["reason"] == "DeadlineExceeded"
    assert status["message"] == "Pod was active on the node longer than the specified deadline"


def test_waiting_reasons_keep_the_pod_pending_with_their_message() -> None:
    message = 'configmap "settings" not found'
    status = pod_status(pod(), record(Waiting("CreateContainerConfigError", message)), T0)
    assert status["phase"] == "Pending"
    assert status["containerStatuses"][0]["state"] == {
        "waiting": {"reason": "CreateContainerConfigError", "message": message}
    }


def test_start_error_has_epoch_start_time() -> None:
    state = Terminated(exit_code=128, reason="StartError", finished_at=T1, message="exec: x")
    terminated = pod_status(pod(), record(state), T1)["containerStatuses"][0]["state"]["terminated"]
    assert terminated["startedAt"] == "1970-01-01T00:00:00Z"
    assert terminated["message"] == "exec: x"


def test_guaranteed_qos_when_requests_equal_limits() -> None:
    amounts = {"cpu": "500m", "memory": "128Mi"}
    status = pod_status(pod(limits=amounts, requests=dict(amounts)), record(Running(T1)), T1)
    assert status["qosClass"] == "Guaranteed"


def test_pod_bound_without_the_scheduler_is_marked_scheduled() -> None:
    status = pod_status(pod({"phase": "Pending"}), record(Running(T1)), T1)
    assert status["conditions"][-1] == condition("PodScheduled", "True", "2026-11-27T05:00:02Z")


def test_unschedulable_status() -> None:
    message = (
        "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: "
        "1 No preemption victims found for incoming pod."
    )
    status = unschedulable_status(pod({"phase": "Pending", "qosClass": "BestEffort"}), message, T0)
    assert status == {
        "phase": "Pending",
        "qosClass": "BestEffort",
        "conditions": [condition("PodScheduled", "False", reason="Unschedulable", message=message)],
    }
    again = unschedulable_status(pod(status), message + " ", T2)
    assert again["conditions"][0]["lastTransitionTime"] == "2026-11-27T05:00:00Z"
