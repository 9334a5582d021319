"""The manifest given to ``podman kube play``, field by field."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from kube_emulator.kubelet.runtime.base import ContainerLaunch, PodLaunch
from kube_emulator.kubelet.runtime.podman import parse_time, start_errors
from kube_emulator.kubelet.runtime.podman_manifest import pod_manifest, podman_pod_name

SECURITY = {
    "runAsUser": 1000,
    "runAsNonRoot": True,
    "readOnlyRootFilesystem": True,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
}


def launch() -> PodLaunch:
    spec = {
        "name": "worker",
        "image": "hodei:latest",
        "securityContext": SECURITY,
        "workingDir": "/scratch",
        "resources": {"limits": {"memory": "128Mi"}, "requests": {"memory": "64Mi"}},
        "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}],
    }
    container = ContainerLaunch(
        name="worker",
        image="hodei:latest",
        argv=("hodei", "worker"),
        env={"HODEI_WORKER_ID": "w-1"},
        working_dir=Path("/unused"),
        memory_limit=128 * 2**20,
        spec=spec,
    )
    pod = {"spec": {"securityContext": {"runAsGroup": 1000, "seccompProfile": {}}}}
    return PodLaunch(
        namespace="hodei-workers",
        name="hodei-worker-w-1",
        uid="0f8e-42ab-cd",
        pod=pod,
        containers=(container,),
        directory=Path("/var/tmp/pod"),
        volumes={"scratch": Path("/var/tmp/pod/volumes/scratch")},
    )


def test_manifest_runs_on_the_host_network_with_the_pods_settings() -> None:
    assert pod_manifest(launch()) == {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "hodei-workers-hodei-worker-w-1-0f8e42ab",
            "labels": {"kube-emulator/uid": "0f8e-42ab-cd"},
        },
        "spec": {
            "hostNetwork": True,
            "restartPolicy": "Never",
            "containers": [
                {
                    "name": "worker",
                    "image": "hodei:latest",
                    "imagePullPolicy": "Never",
                    "command": ["hodei", "worker"],
                    "env": [{"name": "HODEI_WORKER_ID", "value": "w-1"}],
                    "securityContext": SECURITY,
                    "workingDir": "/scratch",
                    "resources": {"limits": {"memory": "128Mi"}},
                    "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}],
                }
            ],
            "securityContext": {"runAsGroup": 1000},
            "volumes": [
                {
                    "name": "scratch",
                    "hostPath": {"path": "/var/tmp/pod/volumes/scratch", "type": "Directory"},
                }
            ],
        },
    }


def test_pod_name_is_a_dns_label() -> None:
    name = podman_pod_name(launch())
    assert name == name.lower()
    assert len(name) <= 63


def test_start_errors_and_times_from_podman_output() -> None:
    cid = "1b" * 32
    stderr = (
        f"[starting container {cid}: runc: runc create failed: unable to start container "
        'process: exec: "nope": executable file not found in $PATH]\n'
        "Error: failed to start 1 containers\n"
    )
    assert start_errors(stderr) == {
        cid: 'runc: runc create failed: unable to start container process: exec: "nope": '
        "executable file not found in $PATH"
    }
    moment = parse_time("2026-11-27T04:53:03.880134863Z")
    assert moment.isoformat() == "2026-11-27T04:53:03.880134+00:00"


def test_init_containers_and_a_shared_process_namespace_pass_through() -> None:
    base = launch()
    init = ContainerLaunch(
        name="launcher",
        image="hodei:latest",
        argv=("/opt/hodei/launcher/busybox", "sh", "-c", "cp a b"),
        env={},
        working_dir=Path("/unused"),
        spec={"name": "launcher", "volumeMounts": [{"name": "scratch", "mountPath": "/hodei"}]},
    )
    pod = {"spec": {**base.pod["spec"], "shareProcessNamespace": True}}
    spec = pod_manifest(replace(base, pod=pod, init_containers=(init,)))["spec"]
    assert spec["shareProcessNamespace"] is True
    assert spec["initContainers"] == [
        {
            "name": "launcher",
            "image": "hodei:latest",
            "imagePullPolicy": "Never",
            "command": ["/opt/hodei/launcher/busybox", "sh", "-c", "cp a b"],
            "env": [],
            "volumeMounts": [{"name": "scratch", "mountPath": "/hodei"}],
        }
    ]
    assert "initContainers" not in pod_manifest(base)["spec"]
    assert "shareProcessNamespace" not in pod_manifest(base)["spec"]
