"""Why a worker pod is not running, read from its status and nothing else.

A job that cannot run must fail with the reason a person needs ("0/3 nodes are
available: 3 Insufficient cpu", "image "x" not found", "OOMKilled (limit 128Mi)"),
not a generic "worker lost". Everything needed is in the pod object the shared watch
already delivers: the PodScheduled condition, container waiting/terminated states, the
pod's own reason (DeadlineExceeded, Evicted). :func:`diagnose` is a pure function of
that object, so it is tested against status fixtures written from the Kubernetes docs.

A pod may hold more than the agent's container (a job in its own image runs in a second
container, after an init container placed its launcher): the agent's container (named
``worker``) says whether the worker runs and how it ended, any container may say why the
pod cannot start (an image that cannot be pulled names that container's image), and a
container the kernel killed for memory makes the failure ``OOMKilled`` whichever it was.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hodei.domain import exitcodes, reasons
from hodei.domain.workers import WorkerPhase

# Image problems that will not fix themselves: fail now rather than at the pending timeout.
# ErrImagePull/ImagePullBackOff are retried by the kubelet and may be a registry hiccup, so
# they fail at once only when the message says the image is missing or refused.
_PERMANENT_IMAGE_REASONS = frozenset({"InvalidImageName", "ErrImageNeverPull"})
_IMAGE_REASONS = frozenset(
    {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"}
)
# Words in an ErrImagePull message that say the image does not exist or is not allowed.
_IMAGE_MISSING = (
    "not found",
    "manifest unknown",
    "does not exist",
    "pull access denied",
    "unauthorized",
)
_START_ERRORS = frozenset({"CreateContainerError", "RunContainerError"})
# A container the runtime created but could not start ends terminated with these.
_TERMINATED_START_ERRORS = frozenset({"StartError", "ContainerCannotRun"})

# The reasons Kubernetes (1.26+) writes into a pod's DisruptionTarget condition when it
# is about to take the pod away, and the failure reason each means for the job. All are
# disruptions: the job is retried on a new pod without using up its max_attempts.
DISRUPTION_TARGET_REASONS: Mapping[str, reasons.Reason] = {
    "EvictionByEvictionAPI": reasons.EVICTED,  # pods/eviction: kubectl drain, autoscalers
    "TerminationByKubelet": reasons.EVICTED,  # node-pressure eviction, graceful node shutdown
    "PreemptionByScheduler": reasons.PREEMPTED,  # a higher-priority pod needed the room
    "PreemptionByKubeScheduler": reasons.PREEMPTED,  # the same, as Kubernetes 1.26 named it
    "DeletionByTaintManager": reasons.WORKER_LOST,  # a NoExecute taint, e.g. node unreachable
    "DeletionByPodGC": reasons.WORKER_LOST,  # its node object was deleted
}


@dataclass(frozen=True)
class Diagnosis:
    """A pod's state in the provider's terms."""

    phase: WorkerPhase
    reason: reasons.Reason | None = None
    message: str | None = None
    exit_code: int | None = None


AGENT_CONTAINER = "worker"


def _statuses(pod: Mapping[str, Any], key: str = "containerStatuses") -> list[Mapping[str, Any]]:
    return list((pod.get("status") or {}).get(key) or [])


def _specs(pod: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    spec = pod.get("spec") or {}
    return {
        c.get("name", ""): c
        for key in ("initContainers", "containers")
        for c in spec.get(key) or []
    }


def _container_status(pod: Mapping[str, Any]) -> Mapping[str, Any]:
    """The agent container's status (a pod of one container: that one)."""
    statuses = _statuses(pod)
    for status in statuses:
        if status.get("name") == AGENT_CONTAINER:
            return status
    return statuses[0] if statuses else {}


def _container_spec(pod: Mapping[str, Any], name: str = AGENT_CONTAINER) -> Mapping[str, Any]:
    specs = _specs(pod)
    if name in specs:
        return specs[name]
    containers = (pod.get("spec") or {}).get("containers") or []
    return containers[0] if containers else {}


def memory_limit(pod: Mapping[str, Any], container: str = AGENT_CONTAINER) -> str | None:
    """A container's memory limit as written in the spec (default: the agent's)."""
    limits = (_container_spec(pod, container).get("resources") or {}).get("limits") or {}
    value = limits.get("memory")
    return str(value) if value is not None else None


def disruption(pod: Mapping[str, Any]) -> Diagnosis | None:
    """The failure a ``DisruptionTarget=True`` condition announces, if the pod has one.

    Shape (Kubernetes pod conditions): ``{"type": "DisruptionTarget", "status": "True",
    "reason": "EvictionByEvictionAPI", "message": "Eviction API: evicting"}``. The message
    is Kubernetes' own and is kept for the user."""
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "DisruptionTarget" and cond.get("status") == "True":
            k8s_reason = str(cond.get("reason") or "")
            reason = DISRUPTION_TARGET_REASONS.get(k8s_reason, reasons.WORKER_LOST)
            detail = str(cond.get("message") or "the pod is being taken away")
            message = f"{k8s_reason}: {detail}" if k8s_reason else detail
            return Diagnosis(WorkerPhase.FAILED, reason, message)
    return None


def _unschedulable(pod: Mapping[str, Any]) -> Diagnosis | None:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if (
            cond.get("type") == "PodScheduled"
            and cond.get("status") == "False"
            and cond.get("reason") == "Unschedulable"
        ):
            message = cond.get("message") or "no node can run the pod"
            return Diagnosis(WorkerPhase.PENDING, reasons.UNSCHEDULABLE, message)
    return None


def _waiting(
    pod: Mapping[str, Any], waiting: Mapping[str, Any], status: Mapping[str, Any]
) -> Diagnosis | None:
    reason = waiting.get("reason")
    if not reason or reason in ("ContainerCreating", "PodInitializing"):
        return None
    detail = waiting.get("message") or ""
    if reason in _IMAGE_REASONS:
        named = _specs(pod).get(status.get("name", "")) or _container_spec(pod)
        image = named.get("image") or status.get("image") or "?"
        message = f'image "{image}" could not be pulled' + (f": {detail}" if detail else "")
        permanent = reason in _PERMANENT_IMAGE_REASONS or any(
            w in detail.lower() for w in _IMAGE_MISSING
        )
        phase = WorkerPhase.FAILED if permanent else WorkerPhase.PENDING
        return Diagnosis(phase, reasons.platform_reason(reason), message)
    if reason == "CreateContainerConfigError":
        return Diagnosis(
            WorkerPhase.FAILED, reasons.CREATE_CONTAINER_CONFIG_ERROR, detail or reason
        )
    if reason in _START_ERRORS:
        name = status.get("name") or AGENT_CONTAINER
        what = "worker" if name == AGENT_CONTAINER else f"{name!r}"
        message = f"the {what} container could not start ({reason}): {detail}"
        return Diagnosis(WorkerPhase.FAILED, reasons.PROVIDER_ERROR, message)
    return Diagnosis(WorkerPhase.PENDING, reasons.platform_reason(reason), detail or None)


def _pending(pod: Mapping[str, Any]) -> Diagnosis:
    found = _unschedulable(pod)
    if found is not None:
        return found
    for status in [*_statuses(pod, "initContainerStatuses"), *_statuses(pod)]:
        waiting = (status.get("state") or {}).get("waiting")
        if waiting:
            found = _waiting(pod, waiting, status)
            if found is not None:
                return found
    return Diagnosis(WorkerPhase.PENDING)


def _unstartable(pod: Mapping[str, Any]) -> Diagnosis | None:
    """A container besides the agent's that the runtime could not start."""
    for status in _statuses(pod):
        term = (status.get("state") or {}).get("terminated") or {}
        if status.get("name") != AGENT_CONTAINER and term.get("reason") in (
            _TERMINATED_START_ERRORS
        ):
            detail = (term.get("message") or "").strip()
            message = f"the {status.get('name')!r} container could not start ({term['reason']})"
            return Diagnosis(
                WorkerPhase.FAILED,
                reasons.START_ERROR,
                message + (f": {detail}" if detail else ""),
            )
    return None


def _init_failure(pod: Mapping[str, Any]) -> Diagnosis | None:
    """An init container (the launcher's placement) that ended in failure."""
    for status in _statuses(pod, "initContainerStatuses"):
        term = (status.get("state") or {}).get("terminated") or {}
        if term and int(term.get("exitCode", 0)) != 0:
            detail = (term.get("message") or term.get("reason") or "").strip()
            message = (
                f"init container {status.get('name')!r} exited with code {term.get('exitCode')}"
                + (f": {detail}" if detail else "")
            )
            return Diagnosis(WorkerPhase.FAILED, reasons.PROVIDER_ERROR, message)
    return None


def _oom_killed(pod: Mapping[str, Any]) -> Diagnosis | None:
    """Any container the kernel killed for exceeding its memory limit."""
    for status in _statuses(pod):
        term = (status.get("state") or {}).get("terminated") or {}
        if term.get("reason") == "OOMKilled":
            name = status.get("name") or AGENT_CONTAINER
            limit = memory_limit(pod, name)
            suffix = f" (limit {limit})" if limit else ""
            what = "worker" if name == AGENT_CONTAINER else f"{name!r}"
            message = f"the {what} container was killed for exceeding its memory limit{suffix}"
            return Diagnosis(
                WorkerPhase.EXITED,
                reasons.OOM_KILLED,
                message,
                int(term.get("exitCode") or exitcodes.OOM_KILLED),
            )
    return None


def _terminated(pod: Mapping[str, Any], term: Mapping[str, Any]) -> Diagnosis:
    code = int(term.get("exitCode", 0))
    reason = term.get("reason") or ""
    oom = _oom_killed(pod)
    if oom is not None:
        return oom
    if code == 0:
        return Diagnosis(WorkerPhase.EXITED, exit_code=0)
    detail = f" ({reason}: {term['message'].strip()})" if term.get("message") and reason else ""
    message = f"the worker container exited with code {code}{detail}"
    return Diagnosis(WorkerPhase.EXITED, reasons.CONTAINER_EXITED, message, code)


def _failed(pod: Mapping[str, Any]) -> Diagnosis:
    status = pod.get("status") or {}
    pod_reason = status.get("reason")
    pod_message = status.get("message") or ""
    if pod_reason == "DeadlineExceeded":
        deadline = (pod.get("spec") or {}).get("activeDeadlineSeconds")
        limit = f" of {deadline}s" if deadline is not None else ""
        message = f"the worker pod exceeded its active deadline{limit}" + (
            f": {pod_message}" if pod_message else ""
        )
        return Diagnosis(WorkerPhase.FAILED, reasons.DEADLINE_EXCEEDED, message)
    if pod_reason == "Evicted":
        message = pod_message or "the worker pod was evicted"
        return Diagnosis(WorkerPhase.FAILED, reasons.EVICTED, message)
    if pod_reason == "Preempting":
        message = pod_message or "the worker pod was preempted"
        return Diagnosis(WorkerPhase.FAILED, reasons.PREEMPTED, message)
    init = _init_failure(pod)
    if init is not None:
        return init
    term = (_container_status(pod).get("state") or {}).get("terminated")
    if term:
        return _terminated(pod, term)
    message = pod_message or "the worker pod failed without a container status"
    return Diagnosis(WorkerPhase.FAILED, reasons.WORKER_LOST, message)


def diagnose(pod: Mapping[str, Any]) -> Diagnosis:
    """The pod's phase for the provider, with reason and message when it cannot run.

    A pod Kubernetes is taking away (``DisruptionTarget``) is FAILED with the disruption's
    reason even while its container still runs: the job will not finish there. A pod in
    phase ``Unknown`` (its node stopped reporting) is FAILED as WorkerLost."""
    phase = (pod.get("status") or {}).get("phase") or "Pending"
    if phase != "Succeeded":
        taken = disruption(pod)
        if taken is not None:
            return taken
    if phase == "Pending":
        return _pending(pod)
    if phase == "Running":
        # The job's own container may have ended already; its agent still reports for it.
        # An agent container that ended leaves nobody to report: diagnose it now, as a
        # job container that never started leaves the agent nothing to run.
        term = (_container_status(pod).get("state") or {}).get("terminated")
        if term and len(_statuses(pod)) > 1:
            return _terminated(pod, term)
        return _unstartable(pod) or Diagnosis(WorkerPhase.RUNNING)
    if phase == "Succeeded":
        return Diagnosis(WorkerPhase.EXITED, exit_code=0)
    if phase == "Failed":
        return _failed(pod)
    node = (pod.get("spec") or {}).get("nodeName")
    where = f'node "{node}"' if node else "the pod's node"
    detail = (pod.get("status") or {}).get("message") or ""
    message = f"{where} stopped reporting; the pod's state is {phase}" + (
        f": {detail}" if detail else ""
    )
    return Diagnosis(WorkerPhase.FAILED, reasons.WORKER_LOST, message)


def essentials(pod: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a pod the provider reads again (labels, versions, what :func:`diagnose`
    needs); the cache keeps only this, so a thousand tracked pods stay small."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    slim_meta = {
        k: meta[k]
        for k in ("name", "labels", "resourceVersion", "creationTimestamp", "deletionTimestamp")
        if k in meta
    }

    def slim(container: Mapping[str, Any]) -> dict[str, Any]:
        limits = (container.get("resources") or {}).get("limits") or {}
        return {
            "name": container.get("name"),
            "image": container.get("image"),
            "resources": {"limits": limits},
        }

    slim_spec: dict[str, Any] = {"containers": [slim(c) for c in spec.get("containers") or []]}
    if spec.get("initContainers"):
        slim_spec["initContainers"] = [slim(c) for c in spec["initContainers"]]
    for key in ("activeDeadlineSeconds", "nodeName"):
        if key in spec:
            slim_spec[key] = spec[key]
    return {"metadata": slim_meta, "spec": slim_spec, "status": pod.get("status") or {}}
