"""Pod status as the kubelet reports it, built from the kubelet's view of its containers.

The kubelet owns ``status`` of a pod on its node: phase, the conditions
PodReadyToStartContainers / Initialized / Ready / ContainersReady (PodScheduled belongs
to the scheduler and is kept), container states with reasons and exit codes, IPs,
startTime and qosClass. Clients (Hodei's provider among them) diagnose pods from these
fields, so they follow the kubelet's rules (``pkg/kubelet/status/generate.go`` and
``getPhase``) for a pod with ``restartPolicy: Never``. Pure: no clock, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from kube_emulator.kubelet.images import image_id, normalize
from kube_emulator.kubelet.resources import qos_class

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
CONTAINER_CREATING = "ContainerCreating"
POD_INITIALIZING = "PodInitializing"
DEADLINE_EXCEEDED = "DeadlineExceeded"
DEADLINE_MESSAGE = "Pod was active on the node longer than the specified deadline"


def timestamp(moment: datetime) -> str:
    """RFC 3339 with seconds, as ``metav1.Time`` serializes."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Waiting:
    reason: str
    message: str = ""


@dataclass(frozen=True)
class Running:
    started_at: datetime


@dataclass(frozen=True)
class Terminated:
    exit_code: int
    reason: str
    finished_at: datetime
    started_at: datetime = EPOCH
    message: str = ""


ContainerState = Waiting | Running | Terminated


@dataclass(frozen=True)
class ContainerRecord:
    """The kubelet's view of one container."""

    name: str
    image: str
    state: ContainerState = Waiting(CONTAINER_CREATING)
    container_id: str = ""


@dataclass(frozen=True)
class PodRecord:
    """The kubelet's view of one pod: its containers plus pod-level facts."""

    containers: tuple[ContainerRecord, ...]
    start_time: datetime
    sandbox_ready: bool = False
    pod_ip: str = ""
    host_ip: str = "127.0.0.1"
    failed_reason: str = ""  # pod-level, e.g. DeadlineExceeded: the phase is then Failed
    failed_message: str = ""
    init_containers: tuple[ContainerRecord, ...] = ()

    def with_container(self, container: ContainerRecord) -> PodRecord:
        """A copy with ``container`` replacing the record of the same name."""
        updated = tuple(container if c.name == container.name else c for c in self.containers)
        return replace(self, containers=updated)

    def with_init_container(self, container: ContainerRecord) -> PodRecord:
        """A copy with the init container of the same name replaced."""
        updated = tuple(container if c.name == container.name else c for c in self.init_containers)
        return replace(self, init_containers=updated)

    @property
    def initialized(self) -> bool:
        """Every init container has completed (true for a pod without any)."""
        return all(
            isinstance(c.state, Terminated) and c.state.exit_code == 0 for c in self.init_containers
        )

    @property
    def init_failed(self) -> bool:
        return any(
            isinstance(c.state, Terminated) and c.state.exit_code != 0 for c in self.init_containers
        )


def phase(record: PodRecord) -> str:
    """``getPhase`` for restartPolicy Never: a failed init container → Failed, any waiting
    → Pending, any running → Running."""
    if record.failed_reason or record.init_failed:
        return "Failed"
    states = [c.state for c in record.containers]
    if any(isinstance(s, Waiting) for s in states):
        return "Pending"
    if any(isinstance(s, Running) for s in states):
        return "Running"
    if all(isinstance(s, Terminated) and s.exit_code == 0 for s in states):
        return "Succeeded"
    return "Failed"


def container_status(spec: Mapping[str, Any], record: ContainerRecord) -> dict[str, Any]:
    """One entry of ``status.containerStatuses``."""
    state = record.state
    created = not isinstance(state, Waiting)
    status: dict[str, Any] = {
        "name": record.name,
        "image": normalize(record.image) if created else record.image,
        "imageID": image_id(record.image) if created else "",
        "ready": isinstance(state, Running),
        "restartCount": 0,
        "started": isinstance(state, Running),
        "state": _state(state, record.container_id),
        "lastState": {},
    }
    if record.container_id:
        status["containerID"] = record.container_id
    resources = spec.get("resources") or {}
    if resources.get("limits") or resources.get("requests"):
        status["resources"] = {k: dict(v) for k, v in resources.items() if v}
    mounts = [_mount_status(m) for m in spec.get("volumeMounts") or []]
    if mounts:
        status["volumeMounts"] = mounts
    return status


def _mount_status(mount: Mapping[str, Any]) -> dict[str, Any]:
    status: dict[str, Any] = {"name": mount["name"], "mountPath": mount["mountPath"]}
    if mount.get("readOnly"):
        status["readOnly"] = True
        status["recursiveReadOnly"] = "Disabled"
    return status


def _state(state: ContainerState, container_id: str) -> dict[str, Any]:
    if isinstance(state, Waiting):
        waiting = {"reason": state.reason}
        if state.message:
            waiting["message"] = state.message
        return {"waiting": waiting}
    if isinstance(state, Running):
        return {"running": {"startedAt": timestamp(state.started_at)}}
    terminated: dict[str, Any] = {"containerID": container_id} if container_id else {}
    terminated |= {
        "exitCode": state.exit_code,
        "reason": state.reason,
        "startedAt": timestamp(state.started_at),
        "finishedAt": timestamp(state.finished_at),
    }
    if state.message:
        terminated["message"] = state.message
    return {"terminated": terminated}


def conditions(
    record: PodRecord, pod_phase: str, previous: Sequence[Mapping[str, Any]], now: datetime
) -> list[dict[str, Any]]:
    """The kubelet's four conditions followed by the conditions others own (PodScheduled).

    ``lastTransitionTime`` moves only when a condition's status changes.
    """
    unready = [c.name for c in record.containers if not isinstance(c.state, Running)]
    terminal_reason = {"Succeeded": "PodCompleted", "Failed": "PodFailed"}.get(pod_phase, "")
    sandbox = "True" if record.sandbox_ready and not terminal_reason else "False"
    built: list[dict[str, Any]] = [
        {"type": "PodReadyToStartContainers", "status": sandbox},
        {"type": "Initialized", "status": "True"},
    ]
    if pod_phase == "Succeeded":
        built[1]["reason"] = "PodCompleted"
    elif not record.initialized:
        pending = [c.name for c in record.init_containers if not _completed(c.state)]
        built[1] |= {
            "status": "False",
            "reason": "ContainersNotInitialized",
            "message": f"containers with incomplete status: [{' '.join(pending)}]",
        }
    for kind in ("Ready", "ContainersReady"):
        if terminal_reason:
            built.append({"type": kind, "status": "False", "reason": terminal_reason})
        elif unready:
            built.append(
                {
                    "type": kind,
                    "status": "False",
                    "reason": "ContainersNotReady",
                    "message": f"containers with unready status: [{' '.join(unready)}]",
                }
            )
        else:
            built.append({"type": kind, "status": "True"})
    old = {c.get("type"): c for c in previous}
    for condition in built:
        before = old.get(condition["type"])
        kept = before is not None and before.get("status") == condition["status"]
        condition["lastProbeTime"] = None
        condition["lastTransitionTime"] = (
            before.get("lastTransitionTime") if kept and before else timestamp(now)
        )
    owned = {c["type"] for c in built}
    others = [dict(c) for c in previous if c.get("type") not in owned]
    if not any(c.get("type") == "PodScheduled" for c in others):
        # A pod created with spec.nodeName never met the scheduler; the kubelet marks it.
        others.append(scheduled_condition(now))
    return built + others


def _completed(state: ContainerState) -> bool:
    return isinstance(state, Terminated) and state.exit_code == 0


def pod_status(pod: Mapping[str, Any], record: PodRecord, now: datetime) -> dict[str, Any]:
    """The whole ``status`` the kubelet writes for ``pod`` given its ``record``."""
    spec = pod.get("spec") or {}
    previous = pod.get("status") or {}
    pod_phase = phase(record)
    specs = {c["name"]: c for c in spec.get("containers") or []}
    status: dict[str, Any] = {
        "phase": pod_phase,
        "conditions": conditions(record, pod_phase, previous.get("conditions") or [], now),
        "hostIP": record.host_ip,
        "hostIPs": [{"ip": record.host_ip}],
        "startTime": timestamp(record.start_time),
        "containerStatuses": [
            container_status(specs.get(c.name, {}), c) for c in record.containers
        ],
        "qosClass": qos_class(spec),
    }
    if record.init_containers:
        init_specs = {c["name"]: c for c in spec.get("initContainers") or []}
        status["initContainerStatuses"] = [
            {**container_status(init_specs.get(c.name, {}), c), "ready": _completed(c.state)}
            for c in record.init_containers
        ]
    if record.pod_ip:
        status["podIP"] = record.pod_ip
        status["podIPs"] = [{"ip": record.pod_ip}]
    if record.failed_reason:
        status["reason"] = record.failed_reason
        status["message"] = record.failed_message
    return status


def unschedulable_status(pod: Mapping[str, Any], message: str, now: datetime) -> dict[str, Any]:
    """Status of a pod the scheduler could not place: Pending with PodScheduled False."""
    previous = dict(pod.get("status") or {})
    condition = {
        "type": "PodScheduled",
        "status": "False",
        "reason": "Unschedulable",
        "message": message,
        "lastProbeTime": None,
        "lastTransitionTime": timestamp(now),
    }
    for old in previous.get("conditions") or []:
        if old.get("type") == "PodScheduled" and old.get("status") == "False":
            condition["lastTransitionTime"] = old.get("lastTransitionTime")
    others = [c for c in previous.get("conditions") or [] if c.get("type") != "PodScheduled"]
    return {
        **previous,
        "phase": "Pending",
        "conditions": [*others, condition],
        "qosClass": qos_class(pod.get("spec") or {}),
    }


def scheduled_condition(now: datetime) -> dict[str, Any]:
    """The PodScheduled condition a binding sets."""
    return {
        "type": "PodScheduled",
        "status": "True",
        "lastProbeTime": None,
        "lastTransitionTime": timestamp(now),
    }
