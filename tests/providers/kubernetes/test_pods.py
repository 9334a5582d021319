"""The worker pod's shape, field by field, from one WorkerPodSpec."""

from __future__ import annotations

import dataclasses
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest

from hodei.config.settings import KubernetesSettings
from hodei.domain.ids import JobId, WorkerId
from hodei.domain.jobs import Resources
from hodei.providers.base import AgentCertificate, WorkerRequest
from hodei.providers.kubernetes.pods import (
    WorkerPodSpec,
    build_pod,
    label_selector,
    pod_name,
)

SETTINGS = KubernetesSettings(
    enabled=True,
    namespace="hodei-workers",
    service_account="hodei-worker",
    image_pull_secrets=("regcred", "other"),
)


def request(**changes: Any) -> WorkerRequest:
    values: dict[str, Any] = {
        "worker_id": WorkerId("w-abc"),
        "job_id": JobId("j-xyz"),
        "token": "tok-123",
        "server_address": "hodei-control-plane.hodei-system.svc:50051",
    }
    values.update(changes)
    return WorkerRequest(**values)


def pod_for(settings: KubernetesSettings = SETTINGS, **changes: Any) -> dict[str, Any]:
    return build_pod(WorkerPodSpec.from_request(request(**changes), settings, instance="cp1"))


def test_metadata_name_namespace_and_labels() -> None:
    pod = pod_for(labels={"team": "data", "hodei.io/instance": "spoofed"})
    assert pod["apiVersion"] == "v1"
    assert pod["kind"] == "Pod"
    assert pod["metadata"] == {
        "name": "hodei-worker-w-abc",
        "namespace": "hodei-workers",
        "labels": {
            "team": "data",
            "app.kubernetes.io/name": "hodei",
            "app.kubernetes.io/component": "worker",
            "app.kubernetes.io/managed-by": "hodei",
            "hodei.io/worker-id": "w-abc",
            "hodei.io/job-id": "j-xyz",
            "hodei.io/instance": "cp1",  # a job label never overrides Hodei's own
        },
    }


def test_pod_level_spec() -> None:
    spec = pod_for()["spec"]
    assert spec["restartPolicy"] == "Never"
    assert spec["serviceAccountName"] == "hodei-worker"
    assert spec["automountServiceAccountToken"] is False
    assert spec["enableServiceLinks"] is False
    assert spec["imagePullSecrets"] == [{"name": "regcred"}, {"name": "other"}]
    assert spec["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "fsGroup": 10001,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert spec["volumes"] == [{"name": "tmp", "emptyDir": {}}]
    assert "activeDeadlineSeconds" not in spec
    assert len(spec["containers"]) == 1


def test_no_pull_secrets_no_field() -> None:
    spec = pod_for(KubernetesSettings())["spec"]
    assert "imagePullSecrets" not in spec


def test_container_command_env_and_security() -> None:
    container = pod_for()["spec"]["containers"][0]
    assert container["name"] == "worker"
    assert container["image"] == "hodei:latest"
    assert container["command"] == ["hodei", "worker"]
    assert "args" not in container
    assert container["env"] == [
        {"name": "HODEI_SERVER_ADDRESS", "value": "hodei-control-plane.hodei-system.svc:50051"},
        {"name": "HODEI_WORKER_ID", "value": "w-abc"},
        {"name": "HODEI_WORKER_TOKEN", "value": "tok-123"},
        {"name": "HOME", "value": "/tmp"},
    ]
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
    }
    assert container["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}]


def test_default_resources() -> None:
    container = pod_for()["spec"]["containers"][0]
    assert container["resources"] == {
        "requests": {"cpu": "100m", "memory": "128Mi"},
        "limits": {"cpu": "1000m", "memory": "512Mi"},
    }


RESTRICTED = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "runAsNonRoot": True,
}
AGENT_RESOURCES = {
    "requests": {"cpu": "20m", "memory": "64Mi"},
    "limits": {"cpu": "1000m", "memory": "256Mi"},
}
LAUNCHER_MOUNT = {"name": "hodei-launcher", "mountPath": "/hodei"}


def test_the_worker_image_named_as_the_job_image_keeps_one_container() -> None:
    assert pod_for(image="hodei:latest") == pod_for()


def test_job_image_pod_level_shape() -> None:
    spec = pod_for(image="python:3.12")["spec"]
    assert spec["shareProcessNamespace"] is True
    assert [c["name"] for c in spec["initContainers"]] == ["launcher"]
    assert [c["name"] for c in spec["containers"]] == ["worker", "job"]
    assert spec["volumes"] == [
        {"name": "tmp", "emptyDir": {}},
        {"name": "hodei-launcher", "emptyDir": {}},
    ]
    # The pod-level identity is the same as for one container: uid 10001 for all.
    assert spec["securityContext"] == pod_for()["spec"]["securityContext"]
    assert spec["automountServiceAccountToken"] is False


def test_job_image_launcher_init_container() -> None:
    (init,) = pod_for(image="python:3.12")["spec"]["initContainers"]
    assert init == {
        "name": "launcher",
        "image": "hodei:latest",
        "command": [
            "/opt/hodei/launcher/busybox",
            "sh",
            "-c",
            "cp /opt/hodei/launcher/busybox /opt/hodei/launcher/launch.sh /hodei/ && "
            "mkfifo -m 600 /hodei/ctl /hodei/status /hodei/stdin /hodei/stdout /hodei/stderr",
        ],
        "resources": AGENT_RESOURCES,
        "securityContext": {**RESTRICTED, "readOnlyRootFilesystem": True},
        "volumeMounts": [LAUNCHER_MOUNT],
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }


def test_job_image_container_runs_the_launcher_with_the_jobs_resources() -> None:
    res = Resources(cpu_request="250m", cpu_limit="2", memory_request="1Gi", memory_limit="2Gi")
    job = pod_for(image="python:3.12", resources=res)["spec"]["containers"][1]
    assert job == {
        "name": "job",
        "image": "python:3.12",
        "command": ["/hodei/busybox", "sh", "/hodei/launch.sh"],
        "resources": {
            "requests": {"cpu": "250m", "memory": "1Gi"},
            "limits": {"cpu": "2", "memory": "2Gi"},
        },
        # No env and no readOnlyRootFilesystem: the image's own ENV and a writable
        # root, as with `docker run IMAGE`.
        "securityContext": RESTRICTED,
        "volumeMounts": [LAUNCHER_MOUNT],
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }


def test_job_image_agent_container() -> None:
    agent = pod_for(image="python:3.12")["spec"]["containers"][0]
    assert agent["image"] == "hodei:latest"
    assert agent["command"] == ["hodei", "worker"]
    assert agent["env"] == [
        {"name": "HODEI_SERVER_ADDRESS", "value": "hodei-control-plane.hodei-system.svc:50051"},
        {"name": "HODEI_WORKER_ID", "value": "w-abc"},
        {"name": "HODEI_WORKER_TOKEN", "value": "tok-123"},
        {"name": "HOME", "value": "/tmp"},
        {"name": "HODEI_LAUNCHER_DIR", "value": "/hodei"},
    ]
    assert agent["resources"] == AGENT_RESOURCES
    assert agent["securityContext"] == {**RESTRICTED, "readOnlyRootFilesystem": True}
    assert agent["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}, LAUNCHER_MOUNT]


@pytest.mark.parametrize(
    ("res", "requests", "limits"),
    [
        # a request above the default limit raises the limit with it
        (
            Resources(cpu_request="64"),
            {"cpu": "64", "memory": "128Mi"},
            {"cpu": "64", "memory": "512Mi"},
        ),
        # a limit below the default request lowers the request with it
        (
            Resources(memory_limit="64Mi"),
            {"cpu": "100m", "memory": "64Mi"},
            {"cpu": "1000m", "memory": "64Mi"},
        ),
    ],
)
def test_request_never_exceeds_limit(
    res: Resources, requests: dict[str, str], limits: dict[str, str]
) -> None:
    container = pod_for(resources=res)["spec"]["containers"][0]
    assert container["resources"] == {"requests": requests, "limits": limits}


def test_settings_defaults_used() -> None:
    settings = KubernetesSettings(
        default_cpu_request="200m",
        default_memory_request="256Mi",
        default_cpu_limit="3",
        default_memory_limit="1Gi",
        worker_image="registry.example/hodei:1.0",
        service_account="runner",
    )
    pod = pod_for(settings)
    container = pod["spec"]["containers"][0]
    assert container["image"] == "registry.example/hodei:1.0"
    assert pod["spec"]["serviceAccountName"] == "runner"
    assert container["resources"] == {
        "requests": {"cpu": "200m", "memory": "256Mi"},
        "limits": {"cpu": "3", "memory": "1Gi"},
    }


@pytest.mark.parametrize(("timeout", "deadline"), [(30, 90), (0.5, 61), (3600, 3660)])
def test_active_deadline_is_timeout_plus_slack(timeout: float, deadline: int) -> None:
    assert pod_for(timeout_seconds=timeout)["spec"]["activeDeadlineSeconds"] == deadline


@pytest.mark.parametrize("image", [None, "python:3.12"])
def test_job_command_and_env_are_not_in_the_pod(image: str | None) -> None:
    # WorkerRequest has neither: the job's argv and env travel over gRPC in AssignJob.
    spec = pod_for(image=image)["spec"]
    containers = [*spec.get("initContainers", []), *spec["containers"]]
    names = {e["name"] for c in containers for e in c.get("env", [])}
    assert names <= {
        "HODEI_SERVER_ADDRESS",
        "HODEI_WORKER_ID",
        "HODEI_WORKER_TOKEN",
        "HOME",
        "HODEI_LAUNCHER_DIR",
    }
    assert all("args" not in c for c in containers)


def test_names_and_selector() -> None:
    assert pod_name("w-1") == "hodei-worker-w-1"
    assert label_selector("cp1") == "app.kubernetes.io/managed-by=hodei,hodei.io/instance=cp1"


@pytest.mark.parametrize("image", [None, "python:3.12"])
def test_pod_validates_against_kubernetes_schema(image: str | None) -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    pod = pod_for(image=image, timeout_seconds=10, labels={"team": "a"})
    kubernetes_validate.validate(pod, "1.33", strict=True)


def test_tls_pods_dial_with_tls_and_mount_the_ca_configmap_read_only() -> None:
    settings = dataclasses.replace(SETTINGS, worker_tls=True, tls_ca_configmap="hodei-ca")
    pod = pod_for(settings)
    container = pod["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["HODEI_TLS"] == "1"
    assert env["HODEI_TLS_CA_FILE"] == "/etc/hodei/ca/ca.crt"
    assert {"name": "hodei-ca", "mountPath": "/etc/hodei/ca", "readOnly": True} in container[
        "volumeMounts"
    ]
    assert {
        "name": "hodei-ca",
        "configMap": {
            "name": "hodei-ca",
            "items": [{"key": "ca.crt", "path": "ca.crt"}],
            "defaultMode": 0o444,
        },
    } in pod["spec"]["volumes"]
    kubernetes_validate.validate(pod, "1.33", strict=True)
    # The system's roots without a ConfigMap; no TLS variable at all without TLS.
    roots = pod_for(dataclasses.replace(SETTINGS, worker_tls=True))["spec"]["containers"][0]
    assert {e["name"] for e in roots["env"] if e["name"].startswith("HODEI_TLS")} == {"HODEI_TLS"}
    assert len(roots["volumeMounts"]) == 1
    plain = pod_for(dataclasses.replace(SETTINGS, tls_ca_configmap="hodei-ca"))
    assert not [e for e in plain["spec"]["containers"][0]["env"] if "TLS" in e["name"]]
    assert plain["spec"]["volumes"] == [{"name": "tmp", "emptyDir": {}}]


def test_under_mtls_the_agent_gets_its_certificate_in_its_env() -> None:
    certificate = AgentCertificate("CERT PEM", "KEY PEM")
    pod = pod_for(dataclasses.replace(SETTINGS, worker_tls=True), agent_certificate=certificate)
    env = {e["name"]: e["value"] for e in pod["spec"]["containers"][0]["env"]}
    assert (env["HODEI_TLS_CLIENT_CERT"], env["HODEI_TLS_CLIENT_KEY"]) == ("CERT PEM", "KEY PEM")
    assert "HODEI_TLS_CLIENT_KEY" not in str(pod_for(SETTINGS))
