"""Node labels and taints, configMap/secret volumes and env, driven by the real kubectl.

The emulator's node carries the labels and taints it was started with (``kubectl get
node``); the scheduler keeps pods off it unless their nodeSelector, required node affinity
and tolerations allow; the kubelet projects ConfigMaps and Secrets into volumes (with the
kubelet's ``..data`` layout) and into env, and keeps a pod waiting while one is missing.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kube_emulator.kubelet.volumes import volume_files, write_volume
from kube_emulator.testing import EmulatorConfig, RunningEmulator, running_emulator

pytestmark = pytest.mark.slow
IMAGE = "python:3.11"
NS = "default"


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEmulator]:
    config = EmulatorConfig(
        workdir=tmp_path_factory.mktemp("emulator"),
        kubelet=True,
        images=(IMAGE,),
        node_labels=(("pool", "gpu"), ("zone", "a")),
        node_taints=("nvidia.com/gpu=present:NoSchedule",),
    )
    with running_emulator(config) as running:
        yield running


def kubectl(emulator: RunningEmulator, *args: str, input: str | None = None) -> str:
    result = emulator.kubectl(*args, input=input)
    assert result.returncode == 0, result.stderr
    return result.stdout


def apply(emulator: RunningEmulator, obj: dict[str, Any]) -> None:
    kubectl(emulator, "apply", "-f", "-", input=json.dumps(obj))


def pod(name: str, code: str, **spec: Any) -> dict[str, Any]:
    container = {"name": "main", "image": IMAGE, "command": [sys.executable, "-c", code]}
    container.update(spec.pop("container", {}))
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"restartPolicy": "Never", "containers": [container], **spec},
    }


TOLERATE = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]


def wait_for(
    emulator: RunningEmulator, name: str, done: Any, timeout: float = 30
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        found: dict[str, Any] = json.loads(kubectl(emulator, "get", "pod", name, "-o", "json"))
        if done(found) or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def phase_is(*phases: str) -> Any:
    return lambda p: (p.get("status") or {}).get("phase") in phases


def scheduled_message(found: dict[str, Any]) -> str:
    for condition in (found.get("status") or {}).get("conditions") or []:
        if condition["type"] == "PodScheduled" and condition["status"] == "False":
            return str(condition.get("message", ""))
    return ""


def test_kubectl_shows_the_node_labels_and_taints(emulator: RunningEmulator) -> None:
    node = json.loads(kubectl(emulator, "get", "node", "emulator-node", "-o", "json"))
    assert node["metadata"]["labels"]["pool"] == "gpu"
    assert node["metadata"]["labels"]["kubernetes.io/os"] == "linux"  # well-known kept
    assert node["spec"]["taints"] == [
        {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}
    ]


def test_taints_selectors_and_affinity_decide_placement(emulator: RunningEmulator) -> None:
    apply(emulator, pod("untolerated", "pass"))
    apply(emulator, pod("elsewhere", "pass", tolerations=TOLERATE, nodeSelector={"pool": "tpu"}))
    affinity = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}
                ]
            }
        }
    }
    apply(
        emulator,
        pod("fits", "pass", tolerations=TOLERATE, nodeSelector={"pool": "gpu"}, affinity=affinity),
    )
    assert wait_for(emulator, "fits", phase_is("Succeeded"))["spec"]["nodeName"] == "emulator-node"
    untolerated = wait_for(emulator, "untolerated", scheduled_message)
    assert "1 node(s) had untolerated taint {nvidia.com/gpu: present}" in scheduled_message(
        untolerated
    )
    elsewhere = wait_for(emulator, "elsewhere", scheduled_message)
    assert "1 node(s) didn't match Pod's node affinity/selector" in scheduled_message(elsewhere)
    kubectl(emulator, "delete", "pod", "untolerated", "elsewhere", "fits", "--wait=false")


def test_configmap_and_secret_reach_files_and_env(emulator: RunningEmulator) -> None:
    kubectl(emulator, "create", "configmap", "app-settings", "--from-literal=mode=fast")
    kubectl(emulator, "create", "secret", "generic", "app-creds", "--from-literal=password=s3cr3t")
    code = (
        "import json, os; print(json.dumps([open('mode').read(), os.environ['MODE'],"
        " os.environ['PASSWORD'], sorted(os.listdir('.'))]))"
    )
    mode = {"configMapKeyRef": {"name": "app-settings", "key": "mode"}}
    password = {"secretKeyRef": {"name": "app-creds", "key": "password"}}
    body = pod(
        "reader",
        code,
        tolerations=TOLERATE,
        volumes=[{"name": "settings", "configMap": {"name": "app-settings"}}],
        container={
            # The process runtime runs in the volume's directory when workingDir is its mountPath.
            "workingDir": "/etc/app",
            "volumeMounts": [{"name": "settings", "mountPath": "/etc/app"}],
            "env": [
                {"name": "MODE", "valueFrom": mode},
                {"name": "PASSWORD", "valueFrom": password},
            ],
        },
    )
    apply(emulator, body)
    assert wait_for(emulator, "reader", phase_is("Succeeded", "Failed"))["status"]["phase"] == (
        "Succeeded"
    )
    logs = kubectl(emulator, "logs", "reader")
    from_file, from_configmap, from_secret, listing = json.loads(logs)
    assert (from_file, from_configmap, from_secret) == ("fast", "fast", "s3cr3t")
    # The kubelet's layout: a timestamped payload directory, ..data, and one link per key.
    assert listing[1:] == ["..data", "mode"] and listing[0].startswith("..20")


def test_a_variable_naming_a_mounted_file_reads_it(emulator: RunningEmulator) -> None:
    """A container told where a mounted file is (as Hodei's agent is told where its CA is)
    reads it there; the process runtime maps the mountPath to the volume's directory."""
    kubectl(emulator, "create", "configmap", "trust", "--from-literal=ca.crt=PEM-BYTES")
    body = pod(
        "trusting",
        "import os; print(open(os.environ['CA_FILE']).read())",
        tolerations=TOLERATE,
        volumes=[{"name": "ca", "configMap": {"name": "trust"}}],
        container={
            "volumeMounts": [{"name": "ca", "mountPath": "/etc/hodei/ca", "readOnly": True}],
            "env": [{"name": "CA_FILE", "value": "/etc/hodei/ca/ca.crt"}],
        },
    )
    apply(emulator, body)
    assert wait_for(emulator, "trusting", phase_is("Succeeded", "Failed"))["status"]["phase"] == (
        "Succeeded"
    )
    assert kubectl(emulator, "logs", "trusting").strip() == "PEM-BYTES"


def test_a_missing_configmap_keeps_the_pod_creating(emulator: RunningEmulator) -> None:
    body = pod(
        "no-settings",
        "pass",
        tolerations=TOLERATE,
        volumes=[{"name": "settings", "configMap": {"name": "absent"}}],
    )
    apply(emulator, body)

    def waiting(found: dict[str, Any]) -> bool:
        statuses = (found.get("status") or {}).get("containerStatuses") or []
        return any("waiting" in (s.get("state") or {}) for s in statuses)

    found = wait_for(emulator, "no-settings", waiting)
    state = found["status"]["containerStatuses"][0]["state"]["waiting"]
    assert state["reason"] == "ContainerCreating"
    assert state["message"] == (
        'MountVolume.SetUp failed for volume "settings" : configmap "absent" not found'
    )
    assert found["status"]["phase"] == "Pending"
    kubectl(emulator, "delete", "pod", "no-settings", "--wait=false")


class Objects:
    def __init__(self, **objects: dict[str, Any]) -> None:
        self.objects = objects

    def get_configmap(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.objects.get(f"cm/{name}")

    def get_secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.objects.get(f"secret/{name}")


def test_volume_files_items_modes_and_optional(tmp_path: Path) -> None:
    lookup = Objects(
        **{"cm/a": {"data": {"x": "1", "y": "2"}}, "secret/s": {"data": {"k": "dg=="}}}
    )
    spec = {
        "volumes": [
            {"name": "all", "configMap": {"name": "a"}},
            {"name": "some", "configMap": {"name": "a", "items": [{"key": "y", "path": "d/why"}]}},
            {"name": "sec", "secret": {"secretName": "s", "defaultMode": 0o400}},
            {"name": "maybe", "configMap": {"name": "absent", "optional": True}},
            {"name": "scratch", "emptyDir": {}},
        ]
    }
    files = volume_files({"spec": spec}, lookup)
    assert files == {
        "all": ({"x": b"1", "y": b"2"}, 0o644),
        "some": ({"d/why": b"2"}, 0o644),
        "sec": ({"k": b"v"}, 0o400),
        "maybe": ({}, 0o644),
    }
    write_volume(tmp_path / "some", *files["some"])
    assert (tmp_path / "some" / "d" / "why").read_bytes() == b"2"
    assert (tmp_path / "some" / "d").is_symlink()
    assert (tmp_path / "some" / "..data").is_symlink()
    missing_key = {
        "volumes": [{"name": "v", "configMap": {"name": "a", "items": [{"key": "z", "path": "z"}]}}]
    }
    with pytest.raises(Exception, match='volume "v" : configmap references non-existent key z'):
        volume_files({"spec": missing_key}, lookup)
