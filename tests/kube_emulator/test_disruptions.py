"""Quota, eviction, cordon/drain, a Terminating namespace and a lost node, each driven
with the real kubectl against the emulator and its kubelet (process runtime)."""

from __future__ import annotations

import json
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from kube_emulator.testing import EmulatorConfig, RunningEmulator, running_emulator
from tests.fixtures.waiting import eventually_sync

pytestmark = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed")

IMAGE = "busybox:1"
NODE = "emulator-node"


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEmulator]:
    workdir = tmp_path_factory.mktemp("emulator")
    config = EmulatorConfig(workdir=workdir, kubelet=True, images=(IMAGE,))
    with running_emulator(config) as running:
        yield running


@pytest.fixture
def ns(emulator: RunningEmulator) -> str:
    name = f"t-{uuid.uuid4().hex[:8]}"
    ok(emulator.kubectl("create", "namespace", name))
    return name


def ok(result: Any) -> str:
    assert result.returncode == 0, result.stderr
    return str(result.stdout)


def refused(result: Any) -> str:
    assert result.returncode != 0, result.stdout
    return str(result.stderr)


def run_pod(
    emulator: RunningEmulator,
    ns: str,
    name: str,
    *,
    cpu: str = "100m",
    command: tuple[str, ...] = ("sleep", "30"),
) -> Any:
    container = {
        "name": name,
        "image": IMAGE,
        "command": list(command),
        "resources": {"requests": {"cpu": cpu}},
    }
    overrides = json.dumps({"spec": {"containers": [container]}})
    return emulator.kubectl(
        "run", name, "-n", ns, f"--image={IMAGE}", "--restart=Never", "--overrides", overrides
    )


def pod(emulator: RunningEmulator, ns: str, name: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(
        ok(emulator.kubectl("get", "pod", name, "-n", ns, "-o", "json"))
    )
    return found


def until(check: Callable[[], bool], *, within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.1)


def test_quota_admission_message_and_describe(emulator: RunningEmulator, ns: str) -> None:
    ok(emulator.kubectl("create", "quota", "one-pod", "-n", ns, "--hard=pods=1,requests.cpu=1"))
    ok(run_pod(emulator, ns, "a"))
    assert refused(run_pod(emulator, ns, "b")).strip() == (
        'Error from server (Forbidden): pods "b" is forbidden: exceeded quota: one-pod, '
        "requested: pods=1, used: pods=1, limited: pods=1"
    )
    described = ok(emulator.kubectl("describe", "quota", "one-pod", "-n", ns))
    rows = {line.split()[0]: line.split()[1:] for line in described.splitlines()[4:]}
    assert rows == {"pods": ["1", "1"], "requests.cpu": ["100m", "1"]}
    ok(emulator.kubectl("delete", "pod", "a", "-n", ns, "--grace-period=0", "--force"))
    ok(run_pod(emulator, ns, "b"))  # room again once the first pod is gone


def test_quota_on_cpu_names_every_exceeded_resource(emulator: RunningEmulator, ns: str) -> None:
    ok(
        emulator.kubectl(
            "create", "quota", "cpu", "-n", ns, "--hard=requests.cpu=500m,limits.memory=1Gi"
        )
    )
    message = refused(run_pod(emulator, ns, "big", cpu="600m"))
    assert "failed quota: cpu: must specify limits.memory" in message


def test_eviction_marks_the_pod_then_deletes_it_gracefully(
    emulator: RunningEmulator, ns: str, tmp_path: Path
) -> None:
    # It ignores SIGTERM, so it is still there, marked, during its grace period.
    ok(run_pod(emulator, ns, "victim", command=("sh", "-c", "trap '' TERM; sleep 30")))
    until(lambda: pod(emulator, ns, "victim")["status"].get("phase") == "Running")
    eviction = {
        "apiVersion": "policy/v1",
        "kind": "Eviction",
        "metadata": {"name": "victim", "namespace": ns},
        "deleteOptions": {"gracePeriodSeconds": 2},
    }
    path = tmp_path / "eviction.json"
    path.write_text(json.dumps(eviction))
    ok(
        emulator.kubectl(
            "create", "--raw", f"/api/v1/namespaces/{ns}/pods/victim/eviction", "-f", str(path)
        )
    )
    marked = pod(emulator, ns, "victim")
    assert marked["metadata"].get("deletionTimestamp")
    target = [c for c in marked["status"]["conditions"] if c["type"] == "DisruptionTarget"]
    assert [(c["status"], c["reason"], c["message"]) for c in target] == [
        ("True", "EvictionByEvictionAPI", "Eviction API: evicting")
    ]
    until(lambda: emulator.kubectl("get", "pod", "victim", "-n", ns).returncode != 0)


def test_cordon_keeps_new_pods_pending_drain_evicts_uncordon_schedules(
    emulator: RunningEmulator, ns: str
) -> None:
    ok(run_pod(emulator, ns, "running"))
    until(lambda: pod(emulator, ns, "running")["status"].get("phase") == "Running")
    try:
        ok(emulator.kubectl("cordon", NODE))
        assert "SchedulingDisabled" in ok(emulator.kubectl("get", "node", NODE))
        ok(run_pod(emulator, ns, "waiting"))

        def unschedulable() -> bool:
            conditions = pod(emulator, ns, "waiting")["status"].get("conditions") or []
            return any(c.get("reason") == "Unschedulable" for c in conditions)

        until(unschedulable)
        scheduled = [
            c
            for c in pod(emulator, ns, "waiting")["status"]["conditions"]
            if c["type"] == "PodScheduled"
        ]
        assert scheduled[0]["message"] == (
            "0/1 nodes are available: 1 node(s) were unschedulable. preemption: 0/1 nodes are "
            "available: 1 Preemption is not helpful for scheduling."
        )
        drained = ok(
            emulator.kubectl(
                "drain",
                NODE,
                "--ignore-daemonsets",
                "--delete-emptydir-data",
                "--force",
                "--pod-selector",
                "run=running",
                "--timeout=30s",
            )
        )
        assert "pod/running evicted" in drained and "drained" in drained
        assert emulator.kubectl("get", "pod", "running", "-n", ns).returncode != 0
    finally:
        ok(emulator.kubectl("uncordon", NODE))
    until(lambda: pod(emulator, ns, "waiting")["status"].get("phase") == "Running")


def test_namespace_stays_terminating_while_finalizers_remain(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    name = f"t-{uuid.uuid4().hex[:8]}"
    manifest = tmp_path / "ns.yaml"
    manifest.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": name, "finalizers": ["example.com/hold"]},
            }
        )
    )
    ok(emulator.kubectl("apply", "-f", str(manifest)))
    ok(emulator.kubectl("delete", "namespace", name, "--wait=false"))
    # Past the namespace controller's purge (its default ServiceAccount is gone): only the
    # finalizer holds it now.
    eventually_sync(
        lambda: emulator.kubectl("get", "serviceaccount", "default", "-n", name).returncode != 0
    )
    assert "Terminating" in ok(emulator.kubectl("get", "namespace", name))
    message = refused(emulator.kubectl("create", "configmap", "c", "-n", name))
    assert message.strip() == (
        f'error: failed to create configmap: configmaps "c" is forbidden: unable to create new '
        f"content in namespace {name} because it is being terminated"
    )
    ok(
        emulator.kubectl(
            "patch", "namespace", name, "--type=merge", "-p", '{"metadata":{"finalizers":null}}'
        )
    )
    until(lambda: emulator.kubectl("get", "namespace", name).returncode != 0)


def test_lost_node_turns_its_pods_unknown_until_it_reports_again(
    emulator: RunningEmulator, ns: str
) -> None:
    ok(run_pod(emulator, ns, "stranded"))
    until(lambda: pod(emulator, ns, "stranded")["status"].get("phase") == "Running")
    emulator.faults.node_not_ready()
    try:
        assert "NotReady" in ok(emulator.kubectl("get", "node", NODE))
        status = pod(emulator, ns, "stranded")["status"]
        assert (status["phase"], status["reason"]) == ("Unknown", "NodeLost")
        assert status["message"] == f"Node {NODE} which was running pod stranded is unresponsive"
    finally:
        emulator.faults.node_ready()
    assert " Ready " in ok(emulator.kubectl("get", "node", NODE))
    until(lambda: pod(emulator, ns, "stranded")["status"].get("phase") == "Running", within=5)
