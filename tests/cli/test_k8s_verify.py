"""`hodei k8s verify` against the emulator: a correct install passes, broken ones name the fix."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from hodei.cli import k8s
from kube_emulator.testing import RunningEmulator
from tests.deploy.manifests import DEPLOY, PROVIDER_FILES


def _install(emulator: RunningEmulator, *files: str) -> None:
    for name in files or PROVIDER_FILES:
        emulator.apply_manifest(DEPLOY / name)


def _verify(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="hodei")
    k8s.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["k8s", "verify", *argv])
    code: int = args.func(args)
    return code


def _admin(emulator: RunningEmulator) -> tuple[str, str]:
    return ("--kubeconfig", str(emulator.admin_kubeconfig))


def _fail_lines(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith("FAIL")]


def test_correct_install_passes_every_check(
    kube_emulator: RunningEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    _install(kube_emulator)
    kube_emulator.reset_request_counts()

    assert _verify(*_admin(kube_emulator)) == 0

    out = capsys.readouterr().out
    assert _fail_lines(out) == []
    assert "ok    RoleBinding hodei-provider in hodei-workers" in out
    assert (
        "ok    system:serviceaccount:hodei-system:hodei-control-plane may watch pods in "
        "hodei-workers: yes" in out
    )
    assert "may create pods/exec in hodei-workers: no" in out
    assert "skip  Deployment hodei-control-plane in hodei-system: not deployed" in out
    assert "skip  Pod profiles: none configured" in out
    assert out.splitlines()[-1].startswith("22 checks: 20 ok, 0 FAIL, 2 skip")
    counts = kube_emulator.request_counts()
    assert counts[("create", "subjectaccessreviews")] == 11
    writes = {k for k in counts if k[0] != "get" and k[1] != "subjectaccessreviews"}
    assert writes == set()


def test_install_with_control_plane_checks_it_too(
    kube_emulator: RunningEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    _install(kube_emulator)
    created = kube_emulator.kubectl(
        "create", "secret", "generic", "hodei-api-token", "-n", "hodei-system",
        "--from-literal=token=abc",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    _install(kube_emulator, "control-plane.yaml")
    # Present is not enough: until its controller reports a replica available, it fails.
    assert _verify(*_admin(kube_emulator)) == 1
    assert "FAIL  Deployment hodei-control-plane in hodei-system: present but not available: " in (
        capsys.readouterr().out
    )
    # What the Deployment controller writes once a replica is ready.
    status = (
        '{"status": {"replicas": 1, "readyReplicas": 1, "availableReplicas": 1, "conditions": '
        '[{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"}]}}'
    )
    patched = kube_emulator.kubectl(
        "patch", "deployment", "hodei-control-plane", "-n", "hodei-system",
        "--subresource=status", "--type=merge", "-p", status,
    )  # fmt: skip
    assert patched.returncode == 0, patched.stderr

    assert _verify(*_admin(kube_emulator)) == 0

    out = capsys.readouterr().out
    assert (
        "ok    Deployment hodei-control-plane in hodei-system: runs as hodei-control-plane" in out
    )
    assert "ok    Service hodei-control-plane in hodei-system: grpc 50051, http 9090" in out
    assert "ok    Secret hodei-api-token in hodei-system: present with key 'token'" in out


def test_deleted_role_binding_fails_with_the_fix(
    kube_emulator: RunningEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    _install(kube_emulator)
    deleted = kube_emulator.kubectl(
        "delete", "rolebinding", "hodei-provider", "-n", "hodei-workers"
    )
    assert deleted.returncode == 0, deleted.stderr

    assert _verify(*_admin(kube_emulator)) == 1

    out = capsys.readouterr().out
    fails = _fail_lines(out)
    assert fails[0] == "FAIL  RoleBinding hodei-provider in hodei-workers: not found"
    # Without the binding the provider may do nothing it needs: one line per permission.
    assert len(fails) == 1 + 7
    assert "may create pods in hodei-workers: no, but the provider needs it" in out
    assert "      fix: kubectl apply -f deploy/kubernetes/rbac.yaml" in out


def test_missing_workers_namespace_fails_with_the_fix(
    kube_emulator: RunningEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    _install(kube_emulator)
    deleted = kube_emulator.kubectl("delete", "namespace", "hodei-workers")
    assert deleted.returncode == 0, deleted.stderr

    assert _verify(*_admin(kube_emulator)) == 1

    out = capsys.readouterr().out
    assert "FAIL  Namespace hodei-workers: not found" in out
    assert "fix: kubectl apply -f deploy/kubernetes/namespace.yaml" in out
    assert "FAIL  Role hodei-provider in hodei-workers: not found" in out
    assert "FAIL  NetworkPolicy hodei-default-deny in hodei-workers: not found" in out
    assert "ok    Namespace hodei-system" in out


def test_missing_network_policy_fails_with_the_fix(
    kube_emulator: RunningEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    _install(kube_emulator)
    deleted = kube_emulator.kubectl(
        "delete", "networkpolicy", "hodei-worker-egress", "-n", "hodei-workers"
    )
    assert deleted.returncode == 0, deleted.stderr

    assert _verify(*_admin(kube_emulator)) == 1

    out = capsys.readouterr().out
    assert _fail_lines(out) == [
        "FAIL  NetworkPolicy hodei-worker-egress in hodei-workers: not found"
    ]
    assert "fix: kubectl apply -f deploy/kubernetes/network-policy.yaml" in out


def test_namespace_flag_and_settings_choose_the_workers_namespace(
    kube_emulator: RunningEmulator,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _install(kube_emulator)
    monkeypatch.setenv("HODEI_K8S_KUBECONFIG", str(kube_emulator.admin_kubeconfig))
    monkeypatch.setenv("HODEI_K8S_NAMESPACE", "team-a")

    assert _verify() == 1
    assert "FAIL  Namespace team-a: not found" in capsys.readouterr().out

    assert _verify("--namespace", "hodei-workers") == 0


def test_unreachable_cluster_exits_2_with_a_message(
    kube_emulator: RunningEmulator, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = tmp_path / "nowhere.kubeconfig"
    config.write_text(
        kube_emulator.admin_kubeconfig.read_text().replace(kube_emulator.url, "https://127.0.0.1:1")
    )
    assert _verify("--kubeconfig", str(config)) == 2
    assert "cannot reach the Kubernetes API" in capsys.readouterr().err


def test_missing_kubeconfig_exits_2_naming_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert _verify("--kubeconfig", str(tmp_path / "absent")) == 2
    assert "no such file" in capsys.readouterr().err


def test_unknown_context_exits_2_naming_it(
    kube_emulator: RunningEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _verify(*_admin(kube_emulator), "--context", "elsewhere") == 2
    assert "no such context" in capsys.readouterr().err


def test_without_read_access_it_exits_2_saying_so(
    kube_emulator: RunningEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    # The control plane may not read namespaces: the tool says so instead of guessing.
    _install(kube_emulator)
    sa = kube_emulator.serviceaccount_kubeconfig("hodei-system", "hodei-control-plane")
    assert _verify("--kubeconfig", str(sa)) == 2
    err = capsys.readouterr().err
    assert "refused a read: Forbidden (403)" in err and "run it with admin credentials" in err


READER_RBAC = """
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: hodei-verify-reader}
rules:
  - apiGroups: ["", "rbac.authorization.k8s.io", "networking.k8s.io", "apps"]
    resources: [namespaces, serviceaccounts, roles, rolebindings, networkpolicies, configmaps,
                deployments, services]
    verbs: [get]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: hodei-verify-reader}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: hodei-verify-reader}
subjects: [{kind: ServiceAccount, name: hodei-control-plane, namespace: hodei-system}]
"""


def test_without_subject_access_reviews_it_reviews_its_own_access(
    kube_emulator: RunningEmulator, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # Run as the control plane itself, allowed to read the objects but not to ask about
    # others: the permission lines come from SelfSubjectAccessReviews.
    _install(kube_emulator)
    reader = tmp_path / "reader.yaml"
    reader.write_text(READER_RBAC)
    kube_emulator.apply_manifest(reader)
    sa = kube_emulator.serviceaccount_kubeconfig("hodei-system", "hodei-control-plane")
    kube_emulator.reset_request_counts()

    assert _verify("--kubeconfig", str(sa)) == 0

    out = capsys.readouterr().out
    assert "ok    the current user may create pods in hodei-workers: yes" in out
    assert "ok    the current user may get secrets in hodei-workers: no" in out
    assert kube_emulator.request_counts()[("create", "selfsubjectaccessreviews")] == 11


@pytest.mark.skipif(shutil.which("hodei") is None, reason="the hodei command is not installed")
def test_hodei_command_runs_verify(kube_emulator: RunningEmulator) -> None:
    _install(kube_emulator)
    hodei = shutil.which("hodei")
    assert hodei is not None
    env = {**os.environ, "HODEI_K8S_KUBECONFIG": str(kube_emulator.admin_kubeconfig)}
    result = subprocess.run(
        [hodei, "k8s", "verify"], capture_output=True, text=True, env=env, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 FAIL" in result.stdout.splitlines()[-1]


GPU = "apiVersion: v1\nkind: Pod\nspec:\n  nodeSelector: {pool: gpu}\n"
# Accepted offline (required fields are the API server's to judge), refused by the server.
NO_IMAGE = "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - name: proxy\n"


def test_profiles_from_the_configmap_are_tried_with_a_server_dry_run(
    kube_emulator: RunningEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    _install(kube_emulator)
    created = kube_emulator.kubectl(
        "create", "configmap", "hodei-pod-templates", "-n", "hodei-system",
        f"--from-literal=gpu.yaml={GPU}", f"--from-literal=sidecar.yaml={NO_IMAGE}",
        "--from-literal=notes.txt=not a profile",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    kube_emulator.reset_request_counts()

    assert _verify(*_admin(kube_emulator)) == 1

    out = capsys.readouterr().out
    source = "ConfigMap hodei-system/hodei-pod-templates key"
    assert (
        f"ok    Pod profile gpu ({source} gpu.yaml): its pod would be admitted in "
        "hodei-workers (server dry run)" in out
    )
    (failed,) = _fail_lines(out)
    assert failed.startswith(f"FAIL  Pod profile sidecar ({source} sidecar.yaml): ")
    assert "spec.containers[1].image: Required value" in failed  # the API server's words
    counts = kube_emulator.request_counts()
    assert counts[("create", "pods")] == 2  # one dry run per profile...
    listed = kube_emulator.kubectl("get", "pods", "-n", "hodei-workers", "-o", "name")
    assert listed.stdout == ""  # ...and nothing created


def test_a_refused_profile_directory_fails_naming_the_file(
    kube_emulator: RunningEmulator,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _install(kube_emulator)
    (tmp_path / "gpu.yaml").write_text("apiVersion: v1\nkind: Pod\nspec:\n  hostPID: true\n")
    monkeypatch.setenv("HODEI_K8S_POD_TEMPLATES_DIR", str(tmp_path))

    assert _verify(*_admin(kube_emulator)) == 1

    (failed,) = _fail_lines(capsys.readouterr().out)
    assert failed.startswith(
        f"FAIL  Pod profiles: pod template {tmp_path / 'gpu.yaml'}: spec.hostPID"
    )


def test_an_unreadable_profiles_configmap_is_said_not_taken_for_none(
    kube_emulator: RunningEmulator, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # A reader that may get every object verify reads but the profiles' ConfigMap.
    _install(kube_emulator, *PROVIDER_FILES, "pod-templates.yaml")
    rbac = READER_RBAC.replace("configmaps,\n                deployments", "deployments").replace(
        "    verbs: [get]\n",
        "    verbs: [get]\n  - apiGroups: ['']\n    resources: [configmaps]\n"
        "    resourceNames: [hodei-provider-config]\n    verbs: [get]\n",
        1,
    )
    reader = tmp_path / "reader.yaml"
    reader.write_text(rbac)
    kube_emulator.apply_manifest(reader)
    sa = kube_emulator.serviceaccount_kubeconfig("hodei-system", "hodei-control-plane")

    assert _verify("--kubeconfig", str(sa)) == 0

    out = capsys.readouterr().out
    assert (
        "skip  Pod profiles: ConfigMap hodei-system/hodei-pod-templates is not readable "
        "with these credentials" in out
    )
