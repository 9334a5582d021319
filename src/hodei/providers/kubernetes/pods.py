"""The worker pod, built without I/O from one typed value.

:class:`WorkerPodSpec` gathers everything that shapes a pod (the job's request and the
provider's settings) and :func:`build_pod` turns it into the plain dict sent to the API
server. Keeping this pure means the pod's shape (labels the NetworkPolicies select on,
the security context Pod Security "restricted" demands, resources, deadline) is checked
field by field in tests, and the selectors used by the watch come from the same place.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hodei.config.settings import KubernetesSettings
from hodei.domain.ids import JobId, WorkerId
from hodei.domain.quantities import parse_quantity
from hodei.providers.base import WorkerRequest

POD_NAME_PREFIX = "hodei-worker-"
CONTAINER_NAME = "worker"
WORKER_COMMAND = ("hodei", "worker")
# The worker image's user (the Dockerfile creates uid/gid 10001).
WORKER_UID = 10001
# activeDeadlineSeconds backstop beyond the job's timeout: the agent enforces the exact
# timeout and reports it; the deadline only catches an agent that could not.
DEADLINE_SLACK_SECONDS = 60

LABEL_NAME = "app.kubernetes.io/name"
LABEL_COMPONENT = "app.kubernetes.io/component"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_WORKER_ID = "hodei.io/worker-id"
LABEL_JOB_ID = "hodei.io/job-id"
LABEL_INSTANCE = "hodei.io/instance"


def pod_name(worker_id: str) -> str:
    """The deterministic pod name: a retried create hits the same name (409), never a twin."""
    return POD_NAME_PREFIX + worker_id


def label_selector(instance: str) -> str:
    """Selects the worker pods this control plane instance owns."""
    return f"{LABEL_MANAGED_BY}=hodei,{LABEL_INSTANCE}={instance}"


@dataclass(frozen=True)
class Resources:
    """Requests and limits after defaults are applied, as Kubernetes quantities."""

    cpu_request: str
    cpu_limit: str
    memory_request: str
    memory_limit: str


def _pair(
    request: str | None, limit: str | None, default_request: str, default_limit: str
) -> tuple[str, str]:
    """Fill a request/limit pair from the defaults so that request ≤ limit always holds.

    An explicit value wins over a default: a job asking for 4 CPUs gets a 4-CPU limit
    rather than a pod the API server rejects; a job limiting itself to 50m gets a 50m
    request rather than the larger default.
    """
    req = request or default_request
    lim = limit or default_limit
    if parse_quantity(req) > parse_quantity(lim):
        if limit is None:
            lim = req
        else:
            req = lim
    return req, lim


@dataclass(frozen=True)
class WorkerPodSpec:
    """Everything that decides the shape of one worker pod."""

    worker_id: WorkerId
    job_id: JobId
    instance: str
    namespace: str
    image: str
    server_address: str
    token: str
    service_account: str
    resources: Resources
    image_pull_secrets: tuple[str, ...] = ()
    active_deadline_seconds: int | None = None
    job_labels: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_request(cls, request: WorkerRequest, settings: KubernetesSettings) -> WorkerPodSpec:
        """Combine a job attempt's request with the provider's settings and defaults."""
        res = request.resources
        cpu_req, cpu_lim = _pair(
            res.cpu_request, res.cpu_limit, settings.default_cpu_request, settings.default_cpu_limit
        )
        mem_req, mem_lim = _pair(
            res.memory_request,
            res.memory_limit,
            settings.default_memory_request,
            settings.default_memory_limit,
        )
        deadline = None
        if request.timeout_seconds is not None:
            deadline = math.ceil(request.timeout_seconds) + DEADLINE_SLACK_SECONDS
        return cls(
            worker_id=request.worker_id,
            job_id=request.job_id,
            instance=request.instance,
            namespace=settings.namespace,
            image=request.image or settings.worker_image,
            server_address=request.server_address,
            token=request.token,
            service_account=settings.service_account,
            resources=Resources(cpu_req, cpu_lim, mem_req, mem_lim),
            image_pull_secrets=settings.image_pull_secrets,
            active_deadline_seconds=deadline,
            job_labels=dict(request.labels),
        )


def pod_labels(spec: WorkerPodSpec) -> dict[str, str]:
    """The job's labels, then Hodei's own, which a job label can never override."""
    labels = dict(spec.job_labels)
    labels.update(
        {
            LABEL_NAME: "hodei",
            LABEL_COMPONENT: "worker",
            LABEL_MANAGED_BY: "hodei",
            LABEL_WORKER_ID: spec.worker_id,
            LABEL_JOB_ID: spec.job_id,
            LABEL_INSTANCE: spec.instance,
        }
    )
    return labels


def _container(spec: WorkerPodSpec) -> dict[str, Any]:
    r = spec.resources
    return {
        "name": CONTAINER_NAME,
        "image": spec.image,
        "command": list(WORKER_COMMAND),
        "env": [
            {"name": "HODEI_SERVER_ADDRESS", "value": spec.server_address},
            {"name": "HODEI_WORKER_ID", "value": spec.worker_id},
            {"name": "HODEI_WORKER_TOKEN", "value": spec.token},
            {"name": "HOME", "value": "/tmp"},
        ],
        "resources": {
            "requests": {"cpu": r.cpu_request, "memory": r.memory_request},
            "limits": {"cpu": r.cpu_limit, "memory": r.memory_limit},
        },
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
        },
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }


def build_pod(spec: WorkerPodSpec) -> dict[str, Any]:
    """The Pod manifest for one worker, ready for ``create``."""
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "serviceAccountName": spec.service_account,
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": WORKER_UID,
            "runAsGroup": WORKER_UID,
            "fsGroup": WORKER_UID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [_container(spec)],
        "volumes": [{"name": "tmp", "emptyDir": {}}],
    }
    if spec.image_pull_secrets:
        pod_spec["imagePullSecrets"] = [{"name": s} for s in spec.image_pull_secrets]
    if spec.active_deadline_seconds is not None:
        pod_spec["activeDeadlineSeconds"] = spec.active_deadline_seconds
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": pod_name(spec.worker_id),
            "namespace": spec.namespace,
            "labels": pod_labels(spec),
        },
        "spec": pod_spec,
    }
