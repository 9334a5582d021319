"""Worker pods and the control plane's pods meet the Pod Security Standard "restricted"."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from hodei.config.settings import KubernetesSettings
from hodei.domain.ids import new_job_id, new_worker_id
from hodei.domain.jobs import Resources
from hodei.providers.base import WorkerRequest
from hodei.providers.kubernetes import pods
from kube_emulator.podsecurity import violations
from tests.deploy.manifests import find


def _worker_pod_spec(**request: Any) -> dict[str, Any]:
    req = WorkerRequest(
        worker_id=new_worker_id(),
        job_id=new_job_id(),
        token="t",
        server_address="hodei-control-plane.hodei-system.svc:50051",
        **request,
    )
    settings = KubernetesSettings(image_pull_secrets=("regcred",))
    spec: dict[str, Any] = pods.build_pod(
        pods.WorkerPodSpec.from_request(req, settings, instance="cp-1")
    )["spec"]
    return spec


def _control_plane_pod_spec() -> dict[str, Any]:
    spec: dict[str, Any] = find("Deployment", "hodei-control-plane")["spec"]["template"]["spec"]
    return spec


@pytest.mark.parametrize(
    "request_fields",
    [
        {},
        {"image": "python:3.12", "timeout_seconds": 30.0, "resources": Resources(cpu_request="2")},
    ],
)
def test_worker_pods_built_by_the_provider_are_restricted(request_fields: dict[str, Any]) -> None:
    spec = _worker_pod_spec(**request_fields)
    assert violations(spec) == []
    container = spec["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert spec["automountServiceAccountToken"] is False


def test_control_plane_pods_are_restricted_with_a_read_only_root() -> None:
    spec = _control_plane_pod_spec()
    assert violations(spec) == []
    assert spec["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True


def _broken(change: str) -> dict[str, Any]:
    spec = copy.deepcopy(_control_plane_pod_spec())
    container = spec["containers"][0]
    if change == "root":
        spec["securityContext"]["runAsUser"] = 0
    elif change == "non-root unset":
        del spec["securityContext"]["runAsNonRoot"]
        del container["securityContext"]["runAsNonRoot"]
    elif change == "escalation":
        container["securityContext"]["allowPrivilegeEscalation"] = True
    elif change == "capabilities":
        container["securityContext"]["capabilities"] = {"drop": ["NET_RAW"]}
    elif change == "added capability":
        container["securityContext"]["capabilities"]["add"] = ["SYS_ADMIN"]
    elif change == "seccomp":
        del spec["securityContext"]["seccompProfile"]
        del container["securityContext"]["seccompProfile"]
    elif change == "unconfined":
        container["securityContext"]["seccompProfile"] = {"type": "Unconfined"}
    elif change == "hostPath":
        spec["volumes"].append({"name": "host", "hostPath": {"path": "/"}})
    elif change == "hostNetwork":
        spec["hostNetwork"] = True
    elif change == "privileged":
        container["securityContext"]["privileged"] = True
    elif change == "hostPort":
        container["ports"][0]["hostPort"] = 50051
    return spec


@pytest.mark.parametrize(
    "change",
    [
        "root",
        "non-root unset",
        "escalation",
        "capabilities",
        "added capability",
        "seccomp",
        "unconfined",
        "hostPath",
        "hostNetwork",
        "privileged",
        "hostPort",
    ],
)
def test_checker_catches_each_broken_rule(change: str) -> None:
    found = violations(_broken(change))
    assert len(found) >= 1, change


def test_seed_test_pod_without_security_context_is_not_restricted() -> None:
    # What `kubectl run test-worker --image=alpine` creates: rejected in hodei-workers.
    plain = {"containers": [{"name": "test-worker", "image": "alpine"}]}
    assert len(violations(plain)) == 4


# A profile using every field a profile may set, tightening where it may.
FULL_PROFILE = """\
apiVersion: v1
kind: Pod
metadata:
  labels: {cost-center: ml}
  annotations: {example.com/owner: data}
spec:
  nodeSelector: {pool: gpu}
  tolerations: [{key: gpu, operator: Exists, effect: NoSchedule}]
  priorityClassName: batch
  securityContext:
    seccompProfile: {type: Localhost, localhostProfile: strict.json}
    supplementalGroups: [2000]
  volumes:
    - {name: settings, configMap: {name: app}}
    - {name: creds, secret: {secretName: app}}
    - {name: shared, emptyDir: {}}
  initContainers:
    - name: fetch
      image: busybox
      command: ["true"]
      volumeMounts: [{name: shared, mountPath: /data}]
  containers:
    - name: job
      env: [{name: MODE, valueFrom: {configMapKeyRef: {name: app, key: mode}}}]
      volumeMounts: [{name: settings, mountPath: /etc/app}]
      resources: {limits: {nvidia.com/gpu: 1}}
      securityContext: {capabilities: {drop: [NET_RAW]}}
    - name: proxy
      image: proxy:1
      securityContext: {runAsUser: 2000}
"""


@pytest.mark.parametrize("image", [None, "python:3.12"])
def test_worker_pods_with_a_full_profile_stay_restricted(image: str | None) -> None:
    from hodei.providers.kubernetes.profiles import parse_profile, profile_pod, sample_request

    settings = KubernetesSettings()
    template = parse_profile("full", "full.yaml", FULL_PROFILE, settings)
    pod = profile_pod(sample_request("full", image=image), settings, template, instance="cp-1")
    spec: dict[str, Any] = pod["spec"]
    assert violations(spec) == []
    names = [c["name"] for c in spec["containers"]]
    assert "proxy" in names and "fetch" in [c["name"] for c in spec["initContainers"]]
    assert spec["automountServiceAccountToken"] is False
