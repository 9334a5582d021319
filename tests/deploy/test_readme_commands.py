"""Every command of the README's Verification and Troubleshooting sections, run after install.

The commands are read from the README itself; each must have an expectation here, and
each expectation must match a README command, so the two cannot drift apart. The
emulator runs a kubelet (process runtime) so the README's test pod really runs.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from hodei.config.settings import KubernetesSettings
from hodei.domain.ids import new_job_id, new_worker_id
from hodei.domain.jobs import Resources
from hodei.providers.base import WorkerRequest
from hodei.providers.kubernetes import pods
from kube_emulator.testing import RunningEmulator
from tests.deploy import readme
from tests.deploy.cluster import run_install

Result = subprocess.CompletedProcess[str]


@dataclass(frozen=True)
class Expectation:
    """A README command (matched by a regular expression) and what its output must show."""

    pattern: str
    check: Callable[[Result], None]


def _succeeds_with(*words: str) -> Callable[[Result], None]:
    def check(result: Result) -> None:
        assert result.returncode == 0, result.stderr
        for word in words:
            assert word in result.stdout, f"{word!r} not in:\n{result.stdout}"

    return check


def _answers(answer: str) -> Callable[[Result], None]:
    def check(result: Result) -> None:
        assert result.stdout.strip() == answer, result.stdout + result.stderr

    return check


def _all_ok(result: Result) -> None:
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    # The in-cluster control plane and pod profiles are optional: their lines say skip when
    # there are none (install.sh creates the profiles' ConfigMap empty).
    skips = ("skip  Deployment", "skip  Pod profiles: none in ConfigMap")
    assert lines and all(line.startswith(("ok ", *skips)) for line in lines[:-1])
    assert "0 FAIL" in lines[-1]


def _pending_pod(result: Result) -> None:
    assert result.returncode == 0, result.stderr
    assert re.search(r"^Status:\s+Pending$", result.stdout, re.M), result.stdout
    assert "Insufficient cpu" in result.stdout, result.stdout


AS_CONTROL_PLANE = "--as=system:serviceaccount:hodei-system:hodei-control-plane"
EXPECTATIONS = (
    Expectation(r"kubectl get ns hodei-workers hodei-system", _succeeds_with(
        "hodei-workers", "hodei-system", "Active")),
    Expectation(r"kubectl get serviceaccount -n hodei-workers", _succeeds_with("hodei-worker")),
    Expectation(r"kubectl get role -n hodei-workers", _succeeds_with("hodei-provider")),
    Expectation(r"kubectl get rolebinding -n hodei-workers", _succeeds_with("hodei-provider")),
    Expectation(r"kubectl get networkpolicies -n hodei-workers", _succeeds_with(
        "hodei-default-deny", "hodei-worker-egress")),
    Expectation(r"kubectl get networkpolicies -n hodei-system", _succeeds_with(
        "hodei-system-default-deny", "hodei-control-plane-ingress")),
    Expectation(r"kubectl describe networkpolicy hodei-control-plane-ingress -n hodei-system",
                _succeeds_with("50051/TCP", "9090/TCP", "hodei.io/client=true",
                               "kubernetes.io/metadata.name=hodei-workers",
                               "kubernetes.io/metadata.name=monitoring")),
    Expectation(r"kubectl get secret hodei-tls -n hodei-system", _succeeds_with(
        "hodei-tls", "kubernetes.io/tls")),
    Expectation(r"kubectl get configmap hodei-ca -n hodei-workers", _succeeds_with("hodei-ca")),
    Expectation(r"kubectl get configmap hodei-provider-config -n hodei-system", _succeeds_with(
        "hodei-provider-config")),
    Expectation(rf"kubectl auth can-i create pods -n hodei-workers {AS_CONTROL_PLANE}",
                _answers("yes")),
    Expectation(rf"kubectl auth can-i get pods --subresource=log -n hodei-workers "
                rf"{AS_CONTROL_PLANE}", _answers("yes")),
    Expectation(rf"kubectl auth can-i create pods --subresource=exec -n hodei-workers "
                rf"{AS_CONTROL_PLANE}", _answers("no")),
    Expectation(rf"kubectl auth can-i get secrets -n hodei-workers {AS_CONTROL_PLANE}",
                _answers("no")),
    Expectation(rf"kubectl auth can-i create pods -n default {AS_CONTROL_PLANE}", _answers("no")),
    Expectation(r"hodei k8s verify", _all_ok),
    Expectation(r"kubectl run test-worker -n hodei-workers --image=alpine --restart=Never "
                r"--overrides=.*", _succeeds_with("pod/test-worker created")),
    Expectation(r"kubectl wait pod/test-worker -n hodei-workers .*", _succeeds_with(
        "condition met")),
    Expectation(r"kubectl logs test-worker -n hodei-workers", _succeeds_with("Hello")),
    Expectation(r"kubectl delete pod test-worker -n hodei-workers", _succeeds_with(
        'pod "test-worker" deleted')),
    Expectation(r"kubectl describe pod <pod-name> -n hodei-workers", _pending_pod),
    Expectation(r"kubectl get pods -n hodei-workers -l app.kubernetes.io/managed-by=hodei",
                _succeeds_with("hodei-worker-", "Pending")),
    Expectation(r"kubectl describe networkpolicy -n hodei-workers", _succeeds_with(
        "hodei-default-deny", "hodei-worker-egress", "50051/TCP", "443/TCP", "53/UDP",
        "53/TCP", "kubernetes.io/metadata.name=hodei-system")),
)  # fmt: skip


def _expectation(command: str) -> Expectation:
    matching = [e for e in EXPECTATIONS if re.fullmatch(e.pattern, command)]
    assert len(matching) == 1, f"README command without exactly one expectation: {command}"
    return matching[0]


def _readme_commands() -> list[str]:
    return readme.commands("Verification") + readme.commands("Troubleshooting")


def test_every_readme_command_has_an_expectation_and_vice_versa() -> None:
    used = {_expectation(c).pattern for c in _readme_commands()}
    assert used == {e.pattern for e in EXPECTATIONS}


def _unschedulable_worker_pod(emulator: RunningEmulator) -> str:
    """A worker pod, as the provider builds it, that asks for more CPU than the node has."""
    request = WorkerRequest(
        worker_id=new_worker_id(),
        job_id=new_job_id(),
        token="t",
        server_address="hodei-control-plane.hodei-system.svc:50051",
        resources=Resources(cpu_request="64", cpu_limit="64"),
    )
    pod = pods.build_pod(
        pods.WorkerPodSpec.from_request(request, KubernetesSettings(), instance="readme")
    )
    result = emulator.kubectl("create", "-f", "-", input=json.dumps(pod))
    assert result.returncode == 0, result.stderr
    name: str = pod["metadata"]["name"]
    return name


def _run(emulator: RunningEmulator, command: str, pending_pod: str) -> Result:
    argv = shlex.split(command.replace("<pod-name>", pending_pod))
    if argv[0] == "kubectl":
        return emulator.kubectl(*argv[1:], timeout=150)
    hodei = shutil.which("hodei")
    assert hodei is not None, "the hodei command is not installed"
    env = {**os.environ, "HODEI_K8S_KUBECONFIG": str(emulator.admin_kubeconfig)}
    return subprocess.run(
        [hodei, *argv[1:]], capture_output=True, text=True, env=env, timeout=60, check=False
    )


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_readme_verification_and_troubleshooting_commands_answer_as_documented(
    kube_emulator_factory: Callable[..., RunningEmulator],
) -> None:
    emulator = kube_emulator_factory(kubelet=True, images=("alpine",), node_cpu="4")
    installed = run_install(emulator, "--with-control-plane")  # TLS objects too
    assert installed.returncode == 0, installed.stdout + installed.stderr
    # The emulator runs no Deployment controller: report a replica available as it would
    # once the control plane's pod is ready (verify checks availability, not presence).
    available = (
        '{"status": {"replicas": 1, "readyReplicas": 1, "availableReplicas": 1, "conditions": '
        '[{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"}]}}'
    )
    patched = emulator.kubectl(
        "patch", "deployment", "hodei-control-plane", "-n", "hodei-system",
        "--subresource=status", "--type=merge", "-p", available,
    )  # fmt: skip
    assert patched.returncode == 0, patched.stderr
    pending_pod = _unschedulable_worker_pod(emulator)
    for command in _readme_commands():
        result = _run(emulator, command, pending_pod)
        _expectation(command).check(result)
