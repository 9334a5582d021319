"""Pod status -> (phase, reason, message), from status shapes the Kubernetes docs show."""

from __future__ import annotations

from typing import Any

import pytest

from hodei.domain.reasons import Reason
from hodei.providers.base import WorkerPhase
from hodei.providers.kubernetes.diagnosis import Diagnosis, diagnose, essentials


def pod(
    status: dict[str, Any], *, image: str = "hodei:latest", deadline: int | None = None
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "containers": [
            {
                "name": "worker",
                "image": image,
                "resources": {"limits": {"cpu": "1", "memory": "128Mi"}},
            }
        ]
    }
    if deadline is not None:
        spec["activeDeadlineSeconds"] = deadline
    return {
        "metadata": {"name": "hodei-worker-w-1", "resourceVersion": "7", "managedFields": [{}]},
        "spec": spec,
        "status": status,
    }


def waiting(reason: str, message: str = "") -> dict[str, Any]:
    state: dict[str, Any] = {"waiting": {"reason": reason}}
    if message:
        state["waiting"]["message"] = message
    return {
        "phase": "Pending",
        "conditions": [{"type": "PodScheduled", "status": "True"}],
        "containerStatuses": [
            {"name": "worker", "ready": False, "restartCount": 0, "state": state}
        ],
    }


def terminated(phase: str, code: int, reason: str, message: str = "") -> dict[str, Any]:
    term: dict[str, Any] = {"exitCode": code, "reason": reason}
    if message:
        term["message"] = message
    return {
        "phase": phase,
        "containerStatuses": [{"name": "worker", "state": {"terminated": term}}],
    }


def test_freshly_created_pod_is_pending_without_reason() -> None:
    assert diagnose(pod({})) == Diagnosis(WorkerPhase.PENDING)
    assert diagnose(pod({"phase": "Pending"})) == Diagnosis(WorkerPhase.PENDING)


def test_container_creating_is_plain_pending() -> None:
    assert diagnose(pod(waiting("ContainerCreating"))) == Diagnosis(WorkerPhase.PENDING)


def test_unschedulable_carries_the_scheduler_message() -> None:
    status = {
        "phase": "Pending",
        "conditions": [
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": "0/3 nodes are available: 3 Insufficient cpu.",
            }
        ],
    }
    assert diagnose(pod(status)) == Diagnosis(
        WorkerPhase.PENDING, Reason("Unschedulable"), "0/3 nodes are available: 3 Insufficient cpu."
    )


def test_err_image_pull_not_found_fails_with_the_image() -> None:
    msg = (
        "rpc error: code = NotFound desc = failed to pull and unpack image "
        '"docker.io/library/nope:1": not found'
    )
    d = diagnose(pod(waiting("ErrImagePull", msg), image="nope:1"))
    assert d.phase is WorkerPhase.FAILED
    assert d.reason == "ErrImagePull"
    assert d.message == f'image "nope:1" could not be pulled: {msg}'


def test_err_image_pull_transient_keeps_waiting() -> None:
    msg = "rpc error: code = Unknown desc = context deadline exceeded"
    d = diagnose(pod(waiting("ErrImagePull", msg), image="registry.example/app:2"))
    assert d == Diagnosis(
        WorkerPhase.PENDING,
        Reason("ErrImagePull"),
        f'image "registry.example/app:2" could not be pulled: {msg}',
    )


def test_image_pull_back_off_keeps_waiting_until_the_pending_timeout() -> None:
    # The back-off message does not say why: it may be a registry hiccup.
    msg = 'Back-off pulling image "registry.example/app:2"'
    d = diagnose(pod(waiting("ImagePullBackOff", msg), image="registry.example/app:2"))
    assert d == Diagnosis(
        WorkerPhase.PENDING,
        Reason("ImagePullBackOff"),
        f'image "registry.example/app:2" could not be pulled: {msg}',
    )


def test_image_pull_back_off_for_a_missing_image_fails() -> None:
    msg = 'Back-off pulling image "nope:1": manifest unknown'
    d = diagnose(pod(waiting("ImagePullBackOff", msg), image="nope:1"))
    assert d.phase is WorkerPhase.FAILED
    assert d.reason == "ImagePullBackOff"


def test_invalid_image_name_fails() -> None:
    msg = 'couldn\'t parse image reference "UPPER:case": invalid reference format'
    d = diagnose(pod(waiting("InvalidImageName", msg), image="UPPER:case"))
    assert d.phase is WorkerPhase.FAILED
    assert d.message == f'image "UPPER:case" could not be pulled: {msg}'


def test_create_container_config_error_fails() -> None:
    msg = 'secret "missing" not found'
    d = diagnose(pod(waiting("CreateContainerConfigError", msg)))
    assert d == Diagnosis(WorkerPhase.FAILED, Reason("CreateContainerConfigError"), msg)


def test_run_container_error_fails_as_provider_error() -> None:
    d = diagnose(pod(waiting("RunContainerError", 'exec: "hodei": executable file not found')))
    assert d.phase is WorkerPhase.FAILED
    assert d.reason == "ProviderError"
    assert "executable file not found" in (d.message or "")


def test_running() -> None:
    status = {"phase": "Running", "containerStatuses": [{"state": {"running": {}}}]}
    assert diagnose(pod(status)) == Diagnosis(WorkerPhase.RUNNING)


def test_succeeded_is_exit_zero() -> None:
    assert diagnose(pod(terminated("Succeeded", 0, "Completed"))) == Diagnosis(
        WorkerPhase.EXITED, exit_code=0
    )


def test_oom_killed_names_the_limit() -> None:
    d = diagnose(pod(terminated("Failed", 137, "OOMKilled")))
    assert d == Diagnosis(
        WorkerPhase.EXITED,
        Reason("OOMKilled"),
        "the worker container was killed for exceeding its memory limit (limit 128Mi)",
        137,
    )


def test_container_error_exit() -> None:
    d = diagnose(pod(terminated("Failed", 2, "Error")))
    assert d == Diagnosis(
        WorkerPhase.EXITED, Reason("ContainerExited"), "the worker container exited with code 2", 2
    )


def test_container_error_exit_with_termination_message() -> None:
    d = diagnose(pod(terminated("Failed", 1, "Error", "HODEI_WORKER_TOKEN: missing\n")))
    assert d.message == (
        "the worker container exited with code 1 (Error: HODEI_WORKER_TOKEN: missing)"
    )


def test_deadline_exceeded() -> None:
    status = {
        "phase": "Failed",
        "reason": "DeadlineExceeded",
        "message": "Pod was active on the node longer than the specified deadline",
    }
    d = diagnose(pod(status, deadline=90))
    assert d == Diagnosis(
        WorkerPhase.FAILED,
        Reason("DeadlineExceeded"),
        "the worker pod exceeded its active deadline of 90s: "
        "Pod was active on the node longer than the specified deadline",
    )


def test_evicted() -> None:
    status = {
        "phase": "Failed",
        "reason": "Evicted",
        "message": "The node was low on resource: memory. "
        "Threshold quantity: 100Mi, available: 50Mi.",
    }
    d = diagnose(pod(status))
    assert d == Diagnosis(WorkerPhase.FAILED, Reason("Evicted"), status["message"])


def test_failed_without_container_status_is_worker_lost() -> None:
    d = diagnose(pod({"phase": "Failed", "message": "node shut down"}))
    assert d == Diagnosis(WorkerPhase.FAILED, Reason("WorkerLost"), "node shut down")


def test_unknown_phase_is_a_lost_worker_naming_the_node() -> None:
    lost = pod({"phase": "Unknown"})
    lost["spec"]["nodeName"] = "node-1"
    d = diagnose(lost)
    assert d == Diagnosis(
        WorkerPhase.FAILED,
        Reason("WorkerLost"),
        'node "node-1" stopped reporting; the pod\'s state is Unknown',
    )


def _disrupted(reason: str, message: str, phase: str = "Running") -> dict[str, Any]:
    return {
        "phase": phase,
        "conditions": [
            {"type": "Ready", "status": "True"},
            {"type": "DisruptionTarget", "status": "True", "reason": reason, "message": message},
        ],
        "containerStatuses": [{"state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}}],
    }


@pytest.mark.parametrize(
    ("k8s_reason", "message", "expected"),
    [
        ("EvictionByEvictionAPI", "Eviction API: evicting", "Evicted"),
        ("TerminationByKubelet", "The node was low on resource: memory.", "Evicted"),
        (
            "PreemptionByScheduler",
            "default-scheduler: preempting to accommodate a higher priority pod",
            "Preempted",
        ),
        ("PreemptionByKubeScheduler", "preempting", "Preempted"),
        ("DeletionByTaintManager", "Taint manager: deleting due to NoExecute taint", "WorkerLost"),
        ("DeletionByPodGC", "PodGC: node no longer exists", "WorkerLost"),
        ("SomethingNew", "a future reason", "WorkerLost"),
    ],
)
def test_disruption_target_fails_a_running_pod_with_its_reason(
    k8s_reason: str, message: str, expected: str
) -> None:
    d = diagnose(pod(_disrupted(k8s_reason, message)))
    assert d == Diagnosis(WorkerPhase.FAILED, Reason(expected), f"{k8s_reason}: {message}")


def test_disruption_target_outranks_the_failed_container() -> None:
    status = _disrupted("EvictionByEvictionAPI", "Eviction API: evicting", phase="Failed")
    status["containerStatuses"] = [{"state": {"terminated": {"exitCode": 143}}}]
    d = diagnose(pod(status))
    assert (d.phase, d.reason) == (WorkerPhase.FAILED, Reason("Evicted"))


def test_a_succeeded_pod_stays_succeeded_even_if_marked_for_disruption() -> None:
    d = diagnose(pod(_disrupted("EvictionByEvictionAPI", "x", phase="Succeeded")))
    assert d == Diagnosis(WorkerPhase.EXITED, exit_code=0)


def test_false_disruption_target_is_ignored() -> None:
    status = _disrupted("EvictionByEvictionAPI", "x")
    status["conditions"][1]["status"] = "False"
    assert diagnose(pod(status)) == Diagnosis(WorkerPhase.RUNNING)


def test_preempting_pod_reason_is_preempted() -> None:
    d = diagnose(pod({"phase": "Failed", "reason": "Preempting", "message": "preempted"}))
    assert d == Diagnosis(WorkerPhase.FAILED, Reason("Preempted"), "preempted")


@pytest.mark.parametrize(
    "status",
    [
        waiting("ErrImagePull", "not found"),
        terminated("Failed", 137, "OOMKilled"),
        {"phase": "Failed", "reason": "DeadlineExceeded"},
        {"phase": "Unknown"},
        _disrupted("EvictionByEvictionAPI", "Eviction API: evicting"),
    ],
)
def test_essentials_keep_the_diagnosis(status: dict[str, Any]) -> None:
    full = pod(status, image="nope:1", deadline=5)
    full["spec"]["nodeName"] = "node-1"
    full["metadata"]["labels"] = {"hodei.io/worker-id": "w-1"}
    slim = essentials(full)
    assert diagnose(slim) == diagnose(full)
    assert "managedFields" not in slim["metadata"]
    assert slim["metadata"]["labels"] == {"hodei.io/worker-id": "w-1"}
    assert slim["metadata"]["resourceVersion"] == "7"


# A job in its own image: init container "launcher", containers "worker" (the agent) and "job".


def launcher_pod(status: dict[str, Any]) -> dict[str, Any]:
    limits = {"cpu": "1", "memory": "300Mi"}
    return {
        "metadata": {"name": "hodei-worker-w-2", "resourceVersion": "9"},
        "spec": {
            "initContainers": [{"name": "launcher", "image": "hodei:latest"}],
            "containers": [
                {"name": "worker", "image": "hodei:latest", "resources": {"limits": {}}},
                {"name": "job", "image": "busybox:1", "resources": {"limits": limits}},
            ],
        },
        "status": status,
    }


def state(name: str, **state: Any) -> dict[str, Any]:
    return {"name": name, "state": state}


def test_job_image_that_cannot_be_pulled_is_named() -> None:
    status = {
        "phase": "Pending",
        "initContainerStatuses": [state("launcher", terminated={"exitCode": 0})],
        "containerStatuses": [
            state("worker", waiting={"reason": "PodInitializing"}),
            state("job", waiting={"reason": "ErrImagePull", "message": "busybox:1: not found"}),
        ],
    }
    d = diagnose(launcher_pod(status))
    assert d == Diagnosis(
        WorkerPhase.FAILED,
        Reason("ErrImagePull"),
        'image "busybox:1" could not be pulled: busybox:1: not found',
    )


def test_initializing_pod_is_plain_pending() -> None:
    status = {
        "phase": "Pending",
        "initContainerStatuses": [state("launcher", running={"startedAt": "x"})],
        "containerStatuses": [
            state("worker", waiting={"reason": "PodInitializing"}),
            state("job", waiting={"reason": "PodInitializing"}),
        ],
    }
    assert diagnose(launcher_pod(status)) == Diagnosis(WorkerPhase.PENDING)


def test_failed_launcher_placement_is_a_provider_error() -> None:
    status = {
        "phase": "Failed",
        "initContainerStatuses": [
            state("launcher", terminated={"exitCode": 1, "reason": "Error", "message": "no space"})
        ],
        "containerStatuses": [state("worker", waiting={"reason": "PodInitializing"})],
    }
    assert diagnose(launcher_pod(status)) == Diagnosis(
        WorkerPhase.FAILED,
        Reason("ProviderError"),
        "init container 'launcher' exited with code 1: no space",
    )


def test_job_container_oom_killed_names_its_limit() -> None:
    status = {
        "phase": "Failed",
        "containerStatuses": [
            state("worker", terminated={"exitCode": 6, "reason": "Error"}),
            state("job", terminated={"exitCode": 137, "reason": "OOMKilled"}),
        ],
    }
    assert diagnose(launcher_pod(status)) == Diagnosis(
        WorkerPhase.EXITED,
        Reason("OOMKilled"),
        "the 'job' container was killed for exceeding its memory limit (limit 300Mi)",
        137,
    )


def test_job_container_ended_while_the_agent_runs_is_running() -> None:
    status = {
        "phase": "Running",
        "containerStatuses": [
            state("worker", running={"startedAt": "x"}),
            state("job", terminated={"exitCode": 3, "reason": "Error"}),
        ],
    }
    assert diagnose(launcher_pod(status)) == Diagnosis(WorkerPhase.RUNNING)


def test_agent_container_ended_while_the_job_container_runs_is_diagnosed() -> None:
    status = {
        "phase": "Running",
        "containerStatuses": [
            state("worker", terminated={"exitCode": 3, "reason": "Error"}),
            state("job", running={"startedAt": "x"}),
        ],
    }
    d = diagnose(launcher_pod(status))
    assert d == Diagnosis(
        WorkerPhase.EXITED, Reason("ContainerExited"), "the worker container exited with code 3", 3
    )


def test_essentials_keep_the_diagnosis_of_a_launcher_pod() -> None:
    status = {
        "phase": "Failed",
        "containerStatuses": [
            state("worker", terminated={"exitCode": 6, "reason": "Error"}),
            state("job", terminated={"exitCode": 137, "reason": "OOMKilled"}),
        ],
    }
    full = launcher_pod(status)
    assert diagnose(essentials(full)) == diagnose(full)


def test_job_container_that_could_not_start_fails_the_worker() -> None:
    status = {
        "phase": "Running",
        "containerStatuses": [
            state("worker", running={"startedAt": "x"}),
            state(
                "job",
                terminated={
                    "exitCode": 128,
                    "reason": "StartError",
                    "message": 'workdir "/srv/app" does not exist',
                },
            ),
        ],
    }
    assert diagnose(launcher_pod(status)) == Diagnosis(
        WorkerPhase.FAILED,
        Reason("StartError"),
        "the 'job' container could not start (StartError): workdir \"/srv/app\" does not exist",
    )
