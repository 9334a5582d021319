"""The worker pod, built without I/O from one typed value.

:class:`WorkerPodSpec` gathers everything that shapes a pod (the job's request and the
provider's settings) and :func:`build_pod` turns it into the plain dict sent to the API
server. Keeping this pure means the pod's shape (labels the NetworkPolicies select on,
the security context Pod Security "restricted" demands, resources, deadline) is checked
field by field in tests, and the selectors used by the watch come from the same place.

Two shapes exist. A job without its own image runs where the agent runs: one container
from the Hodei image (``HODEI_WORKER_IMAGE``). A job that names an image (any image, with
or without Python) runs in a pod of three parts: an init container from the Hodei image
places a static launcher (busybox plus a shell script) into a shared ``emptyDir``; the job
container runs the named image with that launcher as its command; the agent container runs
``hodei worker`` from the Hodei image, receives the job over its authenticated channel and
hands the command and env to the launcher through the shared volume. The pod shares one
process namespace so the agent can signal the job's processes. Neither shape carries the
job's command or env values.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hodei.config.settings import KubernetesSettings
from hodei.domain.ids import JobId, WorkerId
from hodei.domain.quantities import parse_quantity
from hodei.providers.base import AgentCertificate, WorkerRequest, agent_certificate_env

POD_NAME_PREFIX = "hodei-worker-"
CONTAINER_NAME = "worker"  # the agent's container, in both shapes
JOB_CONTAINER_NAME = "job"  # the job's own image, when it names one
LAUNCHER_INIT_NAME = "launcher"
WORKER_COMMAND = ("hodei", "worker")
# Where the Hodei image keeps the launcher (Dockerfile), and where the shared volume that
# carries it into the job's container is mounted in every container of the pod.
LAUNCHER_SOURCE = "/opt/hodei/launcher"
LAUNCHER_DIR = "/hodei"
LAUNCHER_VOLUME = "hodei-launcher"
# The fifos the agent and the launcher talk through (see hodei.worker.launched).
LAUNCHER_FIFOS = ("ctl", "status", "stdin", "stdout", "stderr")
# The agent's own share of a pod whose job runs in another container; the job's
# requests and limits go to the job's container.
AGENT_RESOURCES = {
    "requests": {"cpu": "20m", "memory": "64Mi"},
    "limits": {"cpu": "1000m", "memory": "256Mi"},
}
# The worker image's user (the Dockerfile creates uid/gid 10001).
WORKER_UID = 10001
# activeDeadlineSeconds backstop beyond the job's timeout: the agent enforces the exact
# timeout and reports it; the deadline only catches an agent that could not.
DEADLINE_SLACK_SECONDS = 60

# The CA that signs the control plane's certificate, from a ConfigMap mounted read-only.
CA_VOLUME = "hodei-ca"
CA_MOUNT_PATH = "/etc/hodei/ca"
CA_KEY = "ca.crt"

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


def request_and_limit(
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
    # The image the job names, when it is not the Hodei image: the job then runs in a
    # container of its own through the launcher; ``image`` stays the Hodei image.
    job_image: str | None = None
    tls: bool = False  # dial the control plane with TLS
    tls_ca_configmap: str | None = None  # verify it with this ConfigMap's ca.crt
    agent_certificate: AgentCertificate | None = None  # mTLS: the agent's own certificate

    @classmethod
    def from_request(
        cls, request: WorkerRequest, settings: KubernetesSettings, *, instance: str
    ) -> WorkerPodSpec:
        """Combine a job attempt's request with the provider's settings and defaults;
        ``instance`` names the control plane that owns the pod."""
        res = request.resources
        cpu_req, cpu_lim = request_and_limit(
            res.cpu_request, res.cpu_limit, settings.default_cpu_request, settings.default_cpu_limit
        )
        mem_req, mem_lim = request_and_limit(
            res.memory_request,
            res.memory_limit,
            settings.default_memory_request,
            settings.default_memory_limit,
        )
        deadline = None
        job_image = request.image if request.image != settings.worker_image else None
        if request.timeout_seconds is not None:
            deadline = math.ceil(request.timeout_seconds) + DEADLINE_SLACK_SECONDS
        return cls(
            worker_id=request.worker_id,
            job_id=request.job_id,
            instance=instance,
            namespace=settings.namespace,
            image=settings.worker_image,
            server_address=request.server_address,
            token=request.token,
            service_account=settings.service_account,
            resources=Resources(cpu_req, cpu_lim, mem_req, mem_lim),
            image_pull_secrets=settings.image_pull_secrets,
            active_deadline_seconds=deadline,
            job_labels=dict(request.labels),
            job_image=job_image,
            tls=settings.worker_tls,
            tls_ca_configmap=settings.tls_ca_configmap if settings.worker_tls else None,
            agent_certificate=request.agent_certificate,
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


_RESTRICTED_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "runAsNonRoot": True,
}


def _resources(r: Resources) -> dict[str, Any]:
    return {
        "requests": {"cpu": r.cpu_request, "memory": r.memory_request},
        "limits": {"cpu": r.cpu_limit, "memory": r.memory_limit},
    }


def _agent_container(spec: WorkerPodSpec) -> dict[str, Any]:
    env = [
        {"name": "HODEI_SERVER_ADDRESS", "value": spec.server_address},
        {"name": "HODEI_WORKER_ID", "value": spec.worker_id},
        {"name": "HODEI_WORKER_TOKEN", "value": spec.token},
        {"name": "HOME", "value": "/tmp"},
    ]
    mounts: list[dict[str, Any]] = [{"name": "tmp", "mountPath": "/tmp"}]
    if spec.tls:
        env.append({"name": "HODEI_TLS", "value": "1"})
    if spec.tls and spec.tls_ca_configmap:
        env.append({"name": "HODEI_TLS_CA_FILE", "value": f"{CA_MOUNT_PATH}/{CA_KEY}"})
        mounts.append({"name": CA_VOLUME, "mountPath": CA_MOUNT_PATH, "readOnly": True})
    # A worker certificate passes only the TLS layer (see hodei.server.worker_ca).
    certificate = agent_certificate_env(spec.agent_certificate)
    env += [{"name": name, "value": value} for name, value in certificate.items()]
    if spec.job_image is not None:
        env.append({"name": "HODEI_LAUNCHER_DIR", "value": LAUNCHER_DIR})
        mounts.append({"name": LAUNCHER_VOLUME, "mountPath": LAUNCHER_DIR})
    return {
        "name": CONTAINER_NAME,
        "image": spec.image,
        "command": list(WORKER_COMMAND),
        "env": env,
        "resources": (
            _resources(spec.resources)
            if spec.job_image is None
            else {k: dict(v) for k, v in AGENT_RESOURCES.items()}
        ),
        "securityContext": {**_RESTRICTED_CONTAINER, "readOnlyRootFilesystem": True},
        "volumeMounts": mounts,
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }


def launcher_install_command() -> list[str]:
    """The init container's argv: copy busybox and the launch script, make the fifos.

    It runs busybox's own ``sh``, ``cp`` and ``mkfifo`` (busybox prefers its applets), so
    it depends on nothing else in the Hodei image.
    """
    src, dst = LAUNCHER_SOURCE, LAUNCHER_DIR
    fifos = " ".join(f"{dst}/{name}" for name in LAUNCHER_FIFOS)
    script = f"cp {src}/busybox {src}/launch.sh {dst}/ && mkfifo -m 600 {fifos}"
    return [f"{src}/busybox", "sh", "-c", script]


def launcher_command() -> list[str]:
    """The job container's argv: the placed busybox running the launch script."""
    return [f"{LAUNCHER_DIR}/busybox", "sh", f"{LAUNCHER_DIR}/launch.sh"]


def _launcher_init_container(spec: WorkerPodSpec) -> dict[str, Any]:
    return {
        "name": LAUNCHER_INIT_NAME,
        "image": spec.image,
        "command": launcher_install_command(),
        "resources": {k: dict(v) for k, v in AGENT_RESOURCES.items()},
        "securityContext": {**_RESTRICTED_CONTAINER, "readOnlyRootFilesystem": True},
        "volumeMounts": [{"name": LAUNCHER_VOLUME, "mountPath": LAUNCHER_DIR}],
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }


def _job_container(spec: WorkerPodSpec, image: str) -> dict[str, Any]:
    """The job's image with the launcher as command; no env, so the image's own applies.

    Its root filesystem stays writable, as with ``docker run``; the user is the pod's
    (uid 10001), since Pod Security "restricted" forbids root and the image's own user
    cannot be known before it runs.
    """
    return {
        "name": JOB_CONTAINER_NAME,
        "image": image,
        "command": launcher_command(),
        "resources": _resources(spec.resources),
        "securityContext": dict(_RESTRICTED_CONTAINER),
        "volumeMounts": [{"name": LAUNCHER_VOLUME, "mountPath": LAUNCHER_DIR}],
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }


def _ca_volume(configmap: str) -> dict[str, Any]:
    """The control plane's CA for the agent: the kubelet reads the ConfigMap for the pod,
    so the control plane needs no right beyond creating pods."""
    return {
        "name": CA_VOLUME,
        "configMap": {
            "name": configmap,
            "items": [{"key": CA_KEY, "path": CA_KEY}],
            "defaultMode": 0o444,
        },
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
        "containers": [_agent_container(spec)],
        "volumes": [{"name": "tmp", "emptyDir": {}}],
    }
    if spec.job_image is not None:
        pod_spec["shareProcessNamespace"] = True
        pod_spec["initContainers"] = [_launcher_init_container(spec)]
        pod_spec["containers"].append(_job_container(spec, spec.job_image))
        pod_spec["volumes"].append({"name": LAUNCHER_VOLUME, "emptyDir": {}})
    if spec.tls and spec.tls_ca_configmap:
        pod_spec["volumes"].append(_ca_volume(spec.tls_ca_configmap))
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
