"""install.sh, kubectl apply -f / -k and cleanup, against the emulator with the real kubectl."""

from __future__ import annotations

import base64
import re

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from kube_emulator.testing import RunningEmulator
from tests.deploy.cluster import (
    HODEI_NAMESPACES,
    can_i,
    hodei_objects,
    kubectl_json,
    run_install,
    token_of,
    writes,
)
from tests.deploy.manifests import (
    DEPLOY,
    POD_TEMPLATES_FILE,
    PROVIDER_FILES,
    README,
    find,
    load,
)

# Each test runs install.sh or kubectl (real processes, ~20 kubectl calls per install).
pytestmark = pytest.mark.slow

PROVIDER_OBJECTS = {
    "Namespace//hodei-system",
    "Namespace//hodei-workers",
    "ServiceAccount/hodei-workers/hodei-worker",
    "ServiceAccount/hodei-system/hodei-control-plane",
    "Role/hodei-workers/hodei-provider",
    "RoleBinding/hodei-workers/hodei-provider",
    "NetworkPolicy/hodei-workers/hodei-default-deny",
    "NetworkPolicy/hodei-workers/hodei-worker-egress",
    "NetworkPolicy/hodei-system/hodei-system-default-deny",
    "NetworkPolicy/hodei-system/hodei-control-plane-ingress",
    "ConfigMap/hodei-system/hodei-provider-config",
    "ConfigMap/hodei-system/hodei-pod-templates",
}
CONTROL_PLANE_OBJECTS = {
    "Secret/hodei-system/hodei-api-token",
    "Deployment/hodei-system/hodei-control-plane",
    "Service/hodei-system/hodei-control-plane",
}
TLS_OBJECTS = {"Secret/hodei-system/hodei-tls", "ConfigMap/hodei-workers/hodei-ca"}


def _ours(objects: dict[str, str]) -> set[str]:
    # Objects the cluster itself adds to every namespace (default ServiceAccount, CA bundle).
    return {
        key
        for key in objects
        if not key.endswith("/default") and not key.endswith("/kube-root-ca.crt")
    }


def test_install_on_a_fresh_cluster_applies_everything_and_verifies(
    kube_emulator: RunningEmulator,
) -> None:
    result = run_install(kube_emulator)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "All checks passed." in result.stdout
    assert "FAIL" not in result.stdout
    assert _ours(hodei_objects(kube_emulator)) == PROVIDER_OBJECTS
    order = [m.group(1) for m in re.finditer(r"^(\w+)[./]\S* created$", result.stdout, re.M)]
    assert order[:2] == ["namespace", "namespace"]
    assert order.index("serviceaccount") < order.index("networkpolicy") < order.index("configmap")


def test_second_run_changes_nothing_and_succeeds(kube_emulator: RunningEmulator) -> None:
    assert run_install(kube_emulator, "--with-control-plane").returncode == 0
    before = hodei_objects(kube_emulator)
    token = token_of(kube_emulator)
    kube_emulator.reset_request_counts()

    again = run_install(kube_emulator, "--with-control-plane")

    assert again.returncode == 0, again.stdout + again.stderr
    assert writes(kube_emulator) == {}
    assert hodei_objects(kube_emulator) == before
    assert token_of(kube_emulator) == token
    assert " created" not in again.stdout and " configured" not in again.stdout
    assert "secret/hodei-api-token exists (kept as it is)" in again.stdout


def test_dry_run_changes_nothing(kube_emulator: RunningEmulator) -> None:
    kube_emulator.reset_request_counts()
    result = run_install(kube_emulator, "--dry-run", "--with-control-plane")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "namespace/hodei-workers created (dry run)" in result.stdout
    assert "Dry run: nothing was changed." in result.stdout
    assert writes(kube_emulator) == {}
    assert hodei_objects(kube_emulator) == {}


def test_dry_run_uninstall_changes_nothing(kube_emulator: RunningEmulator) -> None:
    assert run_install(kube_emulator).returncode == 0
    before = hodei_objects(kube_emulator)
    kube_emulator.reset_request_counts()
    result = run_install(kube_emulator, "--uninstall", "--dry-run")
    assert result.returncode == 0, result.stdout + result.stderr
    assert writes(kube_emulator) == {}
    assert hodei_objects(kube_emulator) == before


def test_api_token_secret_is_created_once_and_never_overwritten(
    kube_emulator: RunningEmulator,
) -> None:
    kube_emulator.apply_manifest(DEPLOY / "namespace.yaml")
    mine = base64.b64encode(b"my-own-token").decode()
    created = kube_emulator.kubectl(
        "create", "secret", "generic", "hodei-api-token", "-n", "hodei-system",
        "--from-literal=token=my-own-token",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr

    result = run_install(kube_emulator, "--with-control-plane")

    assert result.returncode == 0, result.stdout + result.stderr
    assert token_of(kube_emulator) == mine


def _tls_files(emulator: RunningEmulator) -> tuple[dict[str, bytes], bytes]:
    """The Secret hodei-tls's files and the CA of the ConfigMap hodei-ca, decoded."""
    secret = kubectl_json(emulator, "get", "secret", "hodei-tls", "-n", "hodei-system")
    files = {k: base64.b64decode(v) for k, v in secret["data"].items()}
    ca = kubectl_json(emulator, "get", "configmap", "hodei-ca", "-n", "hodei-workers")
    return files, ca["data"]["ca.crt"].encode()


def test_tls_certificate_names_the_service_and_its_ca_reaches_the_workers_namespace(
    kube_emulator: RunningEmulator,
) -> None:
    result = run_install(kube_emulator, "--with-control-plane")
    assert result.returncode == 0, result.stdout + result.stderr
    secret = kubectl_json(kube_emulator, "get", "secret", "hodei-tls", "-n", "hodei-system")
    assert secret["type"] == "kubernetes.io/tls"
    files, ca_in_workers = _tls_files(kube_emulator)
    assert set(files) == {"tls.crt", "tls.key", "ca.crt"}
    assert ca_in_workers == files["ca.crt"]
    cert = x509.load_pem_x509_certificate(files["tls.crt"])
    ca = x509.load_pem_x509_certificate(files["ca.crt"])
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(names.get_values_for_type(x509.DNSName)) == {
        "hodei-control-plane",
        "hodei-control-plane.hodei-system",
        "hodei-control-plane.hodei-system.svc",
        "hodei-control-plane.hodei-system.svc.cluster.local",
    }
    cert.verify_directly_issued_by(ca)  # raises unless the CA signed it
    # The key is the certificate's: a TLS server context accepts the pair.
    key = serialization.load_pem_private_key(files["tls.key"], password=None)
    assert key.public_key().public_numbers() == cert.public_key().public_numbers()  # type: ignore[union-attr]


def test_tls_secret_and_ca_configmap_are_created_once_and_never_overwritten(
    kube_emulator: RunningEmulator,
) -> None:
    assert run_install(kube_emulator, "--with-control-plane").returncode == 0
    before = _tls_files(kube_emulator)
    again = run_install(kube_emulator, "--with-control-plane")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "secret/hodei-tls exists (kept as it is)" in again.stdout
    assert "configmap/hodei-ca exists in hodei-workers (kept as it is)" in again.stdout
    assert _tls_files(kube_emulator) == before


def test_monitoring_namespace_is_configurable(kube_emulator: RunningEmulator) -> None:
    result = run_install(kube_emulator, "--monitoring-namespace", "observability")
    assert result.returncode == 0, result.stdout + result.stderr
    policy = kubectl_json(
        kube_emulator, "get", "networkpolicy", "hodei-control-plane-ingress", "-n", "hodei-system"
    )
    metrics = [rule for rule in policy["spec"]["ingress"] if rule["ports"][0]["port"] == 9090]
    assert metrics[0]["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "observability"}}}
    ]
    bad = run_install(kube_emulator, "--monitoring-namespace", "Not_A_Name")
    assert bad.returncode != 0 and "--monitoring-namespace 'Not_A_Name'" in bad.stderr


GPU_PROFILE = "apiVersion: v1\nkind: Pod\nspec:\n  nodeSelector: {pool: gpu}\n"


def _pod_templates(emulator: RunningEmulator) -> dict[str, str]:
    found = kubectl_json(emulator, "get", "configmap", "hodei-pod-templates", "-n", "hodei-system")
    return dict(found.get("data") or {})


def test_pod_templates_configmap_is_created_once_and_never_overwritten(
    kube_emulator: RunningEmulator,
) -> None:
    assert run_install(kube_emulator).returncode == 0
    assert _pod_templates(kube_emulator) == {}
    patched = kube_emulator.kubectl(
        "create", "configmap", "hodei-pod-templates", "-n", "hodei-system",
        f"--from-literal=gpu.yaml={GPU_PROFILE}", "--dry-run=client", "-o", "yaml",
    )  # fmt: skip
    assert patched.returncode == 0, patched.stderr
    replaced = kube_emulator.kubectl("replace", "-f", "-", input=patched.stdout)
    assert replaced.returncode == 0, replaced.stderr

    result = run_install(kube_emulator)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "configmap/hodei-pod-templates exists (kept as it is" in result.stdout
    assert _pod_templates(kube_emulator) == {"gpu.yaml": GPU_PROFILE}


def test_apply_k_profiles_are_mounted_by_the_control_plane_deployment(
    kube_emulator: RunningEmulator,
) -> None:
    """The kustomization's ConfigMap is what the Deployment mounts where the variable points."""
    result = kube_emulator.kubectl("apply", "-k", str(DEPLOY))
    assert result.returncode == 0, result.stderr
    assert kube_emulator.kubectl(
        "create", "secret", "generic", "hodei-api-token", "-n", "hodei-system",
        "--from-literal=token=abc",
    ).returncode == 0  # fmt: skip
    applied = kube_emulator.kubectl("apply", "-f", str(DEPLOY / "control-plane.yaml"))
    assert applied.returncode == 0, applied.stderr
    deployment = kubectl_json(
        kube_emulator, "get", "deployment", "hodei-control-plane", "-n", "hodei-system"
    )
    pod = deployment["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounted = [v for v in volumes.values() if "configMap" in v]
    assert [v["configMap"]["name"] for v in mounted] == ["hodei-pod-templates"]
    mount = next(m for m in pod["containers"][0]["volumeMounts"] if m["name"] == mounted[0]["name"])
    settings = kubectl_json(
        kube_emulator, "get", "configmap", "hodei-provider-config", "-n", "hodei-system"
    )["data"]
    assert mount["mountPath"] == settings["HODEI_K8S_POD_TEMPLATES_DIR"]
    assert mount.get("readOnly") is True
    assert _pod_templates(kube_emulator) == (load(POD_TEMPLATES_FILE)[0].get("data") or {})
    assert find("ConfigMap", "hodei-pod-templates")["metadata"]["namespace"] == "hodei-system"


def test_generated_token_is_random_hex(kube_emulator: RunningEmulator) -> None:
    assert run_install(kube_emulator, "--with-control-plane").returncode == 0
    token = base64.b64decode(token_of(kube_emulator)).decode()
    assert re.fullmatch(r"[0-9a-f]{64}", token)
    assert _ours(hodei_objects(kube_emulator)) == (
        PROVIDER_OBJECTS | CONTROL_PLANE_OBJECTS | TLS_OBJECTS
    )


def test_uninstall_removes_everything(kube_emulator: RunningEmulator) -> None:
    assert run_install(kube_emulator, "--with-control-plane").returncode == 0
    result = run_install(kube_emulator, "--uninstall")
    assert result.returncode == 0, result.stdout + result.stderr
    assert hodei_objects(kube_emulator) == {}
    # Nothing of Hodei's anywhere else either (no cluster-scoped leftovers).
    everything = kubectl_json(
        kube_emulator, "get", "clusterroles,clusterrolebindings,namespaces", "-l",
        "app.kubernetes.io/part-of=hodei",
    )  # fmt: skip
    assert everything["items"] == []


def _readme_apply_order() -> list[tuple[str, str]]:
    """(verb, file) of each `kubectl apply|create -f FILE` of the Quick Start, in order."""
    text = README.read_text()
    quick_start = text.split("## Quick Start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^kubectl (apply|create) -f (\S+)$", quick_start, re.M)


def test_applying_the_files_one_by_one_in_the_readme_order_works(
    kube_emulator: RunningEmulator,
) -> None:
    order = _readme_apply_order()
    assert tuple(name for verb, name in order if verb == "apply") == PROVIDER_FILES
    assert order[-1] == ("create", POD_TEMPLATES_FILE)
    for verb, name in order:
        result = kube_emulator.kubectl(verb, "-f", str(DEPLOY / name))
        assert result.returncode == 0, f"{name}: {result.stderr}"
    assert _ours(hodei_objects(kube_emulator)) == PROVIDER_OBJECTS
    assert can_i(kube_emulator, "create", "pods", "-n", "hodei-workers") == "yes"
    # install.sh over a manual install: nothing to change.
    kube_emulator.reset_request_counts()
    assert run_install(kube_emulator).returncode == 0
    assert writes(kube_emulator) == {}


def test_kubectl_apply_k_works(kube_emulator: RunningEmulator) -> None:
    result = kube_emulator.kubectl("apply", "-k", str(DEPLOY))
    assert result.returncode == 0, result.stderr
    assert _ours(hodei_objects(kube_emulator)) == PROVIDER_OBJECTS
    assert run_install(kube_emulator).returncode == 0


def test_control_plane_manifest_applies_by_hand_after_the_secret(
    kube_emulator: RunningEmulator,
) -> None:
    for name in PROVIDER_FILES:
        assert kube_emulator.kubectl("apply", "-f", str(DEPLOY / name)).returncode == 0
    created = kube_emulator.kubectl(
        "create", "secret", "generic", "hodei-api-token", "-n", "hodei-system",
        "--from-literal=token=abc",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    result = kube_emulator.kubectl("apply", "-f", str(DEPLOY / "control-plane.yaml"))
    assert result.returncode == 0, result.stderr
    assert _ours(hodei_objects(kube_emulator)) >= CONTROL_PLANE_OBJECTS


def test_cleanup_commands_leave_no_hodei_object(kube_emulator: RunningEmulator) -> None:
    assert run_install(kube_emulator, "--with-control-plane").returncode == 0
    assert kube_emulator.kubectl(
        "run", "leftover", "-n", "hodei-workers", "--image=hodei:latest", "--restart=Never",
        "--labels=app.kubernetes.io/name=hodei,app.kubernetes.io/component=worker",
        "--overrides", _RESTRICTED_OVERRIDES,
    ).returncode == 0  # fmt: skip
    for ns in ("hodei-workers", "hodei-system"):
        result = kube_emulator.kubectl("delete", "namespace", ns)
        assert result.returncode == 0, result.stderr
    assert hodei_objects(kube_emulator) == {}
    for ns in HODEI_NAMESPACES:
        assert kubectl_json(kube_emulator, "get", "all,configmaps,secrets", "-n", ns)["items"] == []


def test_missing_kubectl_is_a_clear_error(kube_emulator: RunningEmulator) -> None:
    result = run_install(kube_emulator, env={"KUBECTL": "kubectl-that-does-not-exist"})
    assert result.returncode != 0
    assert "kubectl not found" in result.stderr


def test_unreachable_cluster_is_a_clear_error(kube_emulator: RunningEmulator) -> None:
    config = kube_emulator.config.workdir / "nowhere.kubeconfig"
    config.write_text(
        kube_emulator.admin_kubeconfig.read_text().replace(kube_emulator.url, "https://127.0.0.1:1")
    )
    result = run_install(kube_emulator, env={"KUBECONFIG": str(config)})
    assert result.returncode != 0
    assert "cannot reach the Kubernetes API" in result.stderr
    assert hodei_objects(kube_emulator) == {}


def test_unknown_option_is_rejected(kube_emulator: RunningEmulator) -> None:
    result = run_install(kube_emulator, "--frobnicate")
    assert result.returncode != 0 and "unknown option: --frobnicate" in result.stderr
    assert hodei_objects(kube_emulator) == {}


_RESTRICTED_OVERRIDES = (
    '{"apiVersion":"v1","spec":{"securityContext":{"runAsNonRoot":true,"runAsUser":10001,'
    '"seccompProfile":{"type":"RuntimeDefault"}},"containers":[{"name":"leftover",'
    '"image":"hodei:latest","securityContext":{"allowPrivilegeEscalation":false,'
    '"capabilities":{"drop":["ALL"]}}}]}}'
)


def test_install_fails_when_the_control_plane_has_more_rights_than_it_should(
    kube_emulator: RunningEmulator,
) -> None:
    grant = kube_emulator.kubectl(
        "create", "clusterrolebinding", "too-much", "--clusterrole=cluster-admin",
        "--serviceaccount=hodei-system:hodei-control-plane",
    )  # fmt: skip
    assert grant.returncode == 0, grant.stderr
    result = run_install(kube_emulator)
    assert result.returncode == 1
    assert "FAIL  can-i get secrets -n hodei-workers: yes (expected no)" in result.stdout
    assert "verification check(s) failed" in result.stderr


def test_context_option_selects_the_kubeconfig_context(kube_emulator: RunningEmulator) -> None:
    contexts = kube_emulator.kubectl("config", "get-contexts", "-o", "name").stdout.split()
    wrong = run_install(kube_emulator, "--context", "no-such-context")
    assert wrong.returncode != 0 and "cannot reach the Kubernetes API" in wrong.stderr
    assert hodei_objects(kube_emulator) == {}
    right = run_install(kube_emulator, f"--context={contexts[0]}")
    assert right.returncode == 0, right.stdout + right.stderr
    assert f"context: {contexts[0]}" in right.stdout
