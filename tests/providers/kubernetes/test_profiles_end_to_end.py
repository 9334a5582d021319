"""Pod profiles and per-job secrets end to end: `hodei run --profile/--secret-env` through a
control plane whose worker pods the emulator's kubelet runs, checked on the created pod
(`kubectl get pod -o json`) and by effect (values from a ConfigMap key and a Secret key)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from .conftest import Make

pytestmark = pytest.mark.slow

WORKERS = "hodei-workers"
DEFAULT = """\
apiVersion: v1
kind: Pod
metadata:
  labels: {cost-center: ml}
  annotations: {example.com/owner: data-team}
spec:
  nodeSelector: {kubernetes.io/os: linux}
  tolerations: [{key: dedicated, operator: Exists, effect: NoSchedule}]
  affinity:
    nodeAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
        nodeSelectorTerms:
          - matchExpressions: [{key: kubernetes.io/os, operator: In, values: [linux]}]
  volumes: [{name: settings, configMap: {name: app-settings}}]
  containers:
    - name: job
      env:
        - name: APP_MODE
          valueFrom: {configMapKeyRef: {name: app-settings, key: mode}}
      envFrom: [{configMapRef: {name: app-settings}, prefix: CM_}]
      volumeMounts: [{name: settings, mountPath: /etc/app, readOnly: true}]
      resources: {requests: {memory: 200Mi}}
"""
NOWHERE = """\
apiVersion: v1
kind: Pod
spec:
  nodeSelector: {pool: tpu}
"""


def kubectl(cluster: Any, *args: str) -> str:
    result = cluster.emulator.kubectl(*args)
    assert result.returncode == 0, result.stderr
    return str(result.stdout)


async def profiled(cluster_factory: Make, tmp_path: Path) -> Any:
    templates = tmp_path / "pod-templates"
    templates.mkdir()
    (templates / "default.yaml").write_text(DEFAULT)
    (templates / "nowhere.yaml").write_text(NOWHERE)
    cluster = await cluster_factory(
        HODEI_K8S_POD_TEMPLATES_DIR=str(templates), HODEI_K8S_PENDING_TIMEOUT="3"
    )
    kubectl(
        cluster, "create", "configmap", "app-settings", "-n", WORKERS, "--from-literal=mode=fast"
    )
    kubectl(
        cluster, "create", "secret", "generic", "db-creds", "-n", WORKERS,
        "--from-literal=password=s3cr3t",
    )  # fmt: skip
    return cluster


async def test_values_from_a_configmap_key_and_a_secret_key(
    cluster_factory: Make, tmp_path: Path
) -> None:
    cluster = await profiled(cluster_factory, tmp_path)
    script = 'echo "$APP_MODE $CM_mode $DB_PASSWORD"'
    code, out, err = await cluster.run(
        "--secret-env", "DB_PASSWORD=db-creds:password", "--", "sh", "-c", script
    )
    assert (code, out) == (0, "fast fast s3cr3t\n"), err
    assert await cluster.no_pods_left() == []


async def test_the_created_pod_carries_the_profile_and_only_the_secret_reference(
    cluster_factory: Make, tmp_path: Path
) -> None:
    cluster = await profiled(cluster_factory, tmp_path)
    proc = await asyncio.create_subprocess_exec(
        *cluster.command("--secret-env", "DB_PASSWORD=db-creds:password", "--", "sleep", "30"),
        env=cluster.env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        pods: list[dict[str, Any]] = []
        for _ in range(200):
            pods = json.loads(kubectl(cluster, "get", "pods", "-n", WORKERS, "-o", "json"))["items"]
            if pods and (pods[0].get("status") or {}).get("phase") == "Running":
                break
            await asyncio.sleep(0.1)
        (pod,) = pods
        assert pod["status"]["phase"] == "Running"
        metadata, spec = pod["metadata"], pod["spec"]
        assert metadata["labels"]["cost-center"] == "ml"
        assert metadata["labels"]["app.kubernetes.io/managed-by"] == "hodei"
        assert metadata["annotations"]["example.com/owner"] == "data-team"
        assert spec["nodeSelector"] == {"kubernetes.io/os": "linux"}
        assert spec["tolerations"][0]["key"] == "dedicated"
        assert "nodeAffinity" in spec["affinity"]
        volumes = {volume["name"]: volume for volume in spec["volumes"]}
        assert volumes["settings"]["configMap"]["name"] == "app-settings"
        (container,) = spec["containers"]
        env = {var["name"]: var for var in container["env"]}
        assert env["DB_PASSWORD"] == {
            "name": "DB_PASSWORD",
            "valueFrom": {"secretKeyRef": {"name": "db-creds", "key": "password"}},
        }
        assert "s3cr3t" not in json.dumps(pod)  # only the reference, never the value
        assert env["APP_MODE"]["valueFrom"]["configMapKeyRef"]["key"] == "mode"
        assert container["envFrom"] == [{"configMapRef": {"name": "app-settings"}, "prefix": "CM_"}]
        assert {"name": "settings", "mountPath": "/etc/app", "readOnly": True} in container[
            "volumeMounts"
        ]
        assert container["resources"]["requests"]["memory"] == "200Mi"
        assert container["command"] == ["hodei", "worker"]
        assert spec["restartPolicy"] == "Never" and spec["automountServiceAccountToken"] is False
        (job,) = json.loads(await cluster.hodei("jobs", "list", "-o", "json"))
        shown = await cluster.hodei("jobs", "show", "-o", "json", job["id"])
        assert "s3cr3t" not in shown
    finally:
        proc.terminate()
        await proc.communicate()
    assert await cluster.no_pods_left() == []


async def test_a_missing_secret_fails_the_job_naming_it(
    cluster_factory: Make, tmp_path: Path
) -> None:
    cluster = await profiled(cluster_factory, tmp_path)
    code, out, err = await cluster.run("--secret-env", "TOKEN=absent:token", "--", "true")
    assert code == 125, err
    assert out == ""
    assert "CreateContainerConfigError" in err
    assert 'secret "absent" not found' in err
    code, _, err = await cluster.run("--secret-env", "TOKEN=db-creds:nokey", "--", "true")
    assert code == 125
    assert "couldn't find key nokey in Secret hodei-workers/db-creds" in err
    assert await cluster.no_pods_left() == []


async def test_unknown_profile_refused_and_unschedulable_profile_fails(
    cluster_factory: Make, tmp_path: Path
) -> None:
    cluster = await profiled(cluster_factory, tmp_path)
    code, out, err = await cluster.run("--profile", "gpu", "--", "true")
    assert code == 125, err
    assert out == ""
    assert "profile 'gpu' does not exist; profiles: default, nowhere" in err
    code, _, err = await cluster.run("--profile", "nowhere", "--", "true")
    assert code == 125, err
    assert "Unschedulable" in err
    assert "node(s) didn't match Pod's node affinity/selector" in err
    assert await cluster.no_pods_left() == []
