"""The shipped manifests: schema-valid, and in agreement with the code that relies on them."""

from __future__ import annotations

import copy
import dataclasses
import json
import re
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest

from hodei.config.settings import (
    DEFAULT_IN_CLUSTER_SERVER_ADDRESS,
    KubernetesSettings,
    ServerSettings,
    load_kubernetes_settings,
    load_server_settings,
)
from hodei.providers.kubernetes import pods, verify
from tests.deploy.manifests import (
    ALL_FILES,
    DEPLOY,
    DOCKERFILE,
    KUSTOMIZATION_FILES,
    all_objects,
    find,
    load,
    of_kind,
)

KUBERNETES_VERSION = "1.33"
POD_TEMPLATES_DIR = "/etc/hodei/pod-templates"
HODEI_LABELS = {"app.kubernetes.io/name": "hodei", "app.kubernetes.io/part-of": "hodei"}
# Values configmap.yaml deliberately sets differently from the settings defaults.
IN_CLUSTER_OVERRIDES = {
    "HODEI_K8S_ENABLED": "1",
    "HODEI_SERVER_ADDRESS": DEFAULT_IN_CLUSTER_SERVER_ADDRESS,
    "HODEI_K8S_POD_TEMPLATES_DIR": POD_TEMPLATES_DIR,
    # The CA ConfigMap install.sh creates in hodei-workers for worker pods.
    "HODEI_K8S_TLS_CA_CONFIGMAP": "hodei-ca",
}


@pytest.mark.parametrize("name", ALL_FILES)
def test_every_manifest_validates_strictly_against_the_kubernetes_schemas(name: str) -> None:
    docs = load(name)
    assert docs
    for doc in docs:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_strict_validation_rejects_an_unknown_field() -> None:
    # The check above would be worthless if strict mode let typos through.
    deployment = copy.deepcopy(find("Deployment", "hodei-control-plane"))
    deployment["spec"]["template"]["spec"]["containers"][0]["comand"] = ["hodei"]
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_kustomization_lists_the_provider_files_in_install_order() -> None:
    kustomization = load("kustomization.yaml")[0]
    assert tuple(kustomization["resources"]) == KUSTOMIZATION_FILES


def test_everything_lives_in_the_two_hodei_namespaces() -> None:
    namespaced = [o for o in all_objects() if o["kind"] != "Namespace"]
    assert {o["metadata"]["namespace"] for o in namespaced} == {"hodei-system", "hodei-workers"}
    assert [o["metadata"]["name"] for o in of_kind("Namespace")] == [
        "hodei-system",
        "hodei-workers",
    ]


@pytest.mark.parametrize("name", ["hodei-system", "hodei-workers"])
def test_namespaces_carry_hodei_labels_and_enforce_restricted(name: str) -> None:
    labels = find("Namespace", name)["metadata"]["labels"]
    assert labels.items() >= HODEI_LABELS.items()
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


def test_role_has_exactly_the_seed_rules() -> None:
    role = find("Role", "hodei-provider")
    assert role["metadata"]["namespace"] == "hodei-workers"
    assert role["rules"] == [
        {
            "apiGroups": [""],
            "resources": ["pods"],
            "verbs": ["create", "get", "list", "watch", "delete"],
        },
        {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
        {"apiGroups": [""], "resources": ["pods/status"], "verbs": ["get"]},
    ]
    assert role["rules"] == list(verify.PROVIDER_RULES)


def test_role_binding_grants_the_role_to_the_control_plane_account() -> None:
    binding = find("RoleBinding", "hodei-provider")
    assert binding["metadata"]["namespace"] == "hodei-workers"
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "hodei-provider",
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "hodei-control-plane", "namespace": "hodei-system"}
    ]
    account = find("ServiceAccount", "hodei-control-plane")
    assert account["metadata"]["namespace"] == "hodei-system"


def test_worker_account_gets_no_token() -> None:
    account = find("ServiceAccount", "hodei-worker")
    assert account["metadata"]["namespace"] == "hodei-workers"
    assert account["automountServiceAccountToken"] is False


def _config_data() -> dict[str, str]:
    config = find("ConfigMap", "hodei-provider-config")
    assert config["metadata"]["namespace"] == "hodei-system"
    data: dict[str, str] = config["data"]
    return data


def test_configmap_keys_are_the_provider_variables_the_settings_code_reads() -> None:
    read_for_provider = set(_variables_read_by(load_kubernetes_settings))
    in_cluster = {"HODEI_SERVER_ADDRESS", "HODEI_PLATFORM_RETRIES"}
    assert set(_config_data()) == read_for_provider | in_cluster
    assert set(_config_data()) <= set(verify.variables_read())


def test_configmap_values_are_the_defaults_except_the_in_cluster_overrides() -> None:
    data = _config_data()
    for key, value in IN_CLUSTER_OVERRIDES.items():
        assert data[key] == value
    defaults = {k: v for k, v in data.items() if k not in IN_CLUSTER_OVERRIDES}
    assert load_kubernetes_settings(defaults) == KubernetesSettings()
    server = load_server_settings(data)
    assert server.kubernetes == dataclasses.replace(
        KubernetesSettings(),
        enabled=True,
        tls_ca_configmap="hodei-ca",
        pod_templates_dir=POD_TEMPLATES_DIR,
    )
    assert server.server_address == DEFAULT_IN_CLUSTER_SERVER_ADDRESS
    assert server.platform_retries == ServerSettings().platform_retries


def test_configmap_names_the_worker_account_and_namespace_of_rbac_yaml() -> None:
    data = _config_data()
    worker_account = find("ServiceAccount", "hodei-worker")
    assert data["HODEI_K8S_SERVICE_ACCOUNT"] == worker_account["metadata"]["name"]
    assert data["HODEI_K8S_NAMESPACE"] == worker_account["metadata"]["namespace"]
    assert data["HODEI_K8S_NAMESPACE"] == find("Role", "hodei-provider")["metadata"]["namespace"]


def test_workers_dial_the_control_plane_service_on_the_port_the_server_listens_on() -> None:
    service = find("Service", "hodei-control-plane")
    ports = {p["name"]: p for p in service["spec"]["ports"]}
    grpc_port = int(ServerSettings().grpc_address.rpartition(":")[2])
    http_port = int(ServerSettings().http_address.rpartition(":")[2])
    assert ports["grpc"]["port"] == grpc_port == verify.GRPC_PORT
    assert ports["http"]["port"] == http_port == verify.HTTP_PORT
    host, _, port = _config_data()["HODEI_SERVER_ADDRESS"].rpartition(":")
    meta = service["metadata"]
    assert host == f"{meta['name']}.{meta['namespace']}.svc"
    assert int(port) == grpc_port


def _pod_template() -> dict[str, Any]:
    template: dict[str, Any] = find("Deployment", "hodei-control-plane")["spec"]["template"]
    return template


def test_service_selects_the_control_plane_pods_and_names_their_ports() -> None:
    service = find("Service", "hodei-control-plane")
    template = _pod_template()
    labels = template["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert verify.CONTROL_PLANE_POD_SELECTOR.items() <= labels.items()
    container = template["spec"]["containers"][0]
    named = {p["name"]: p["containerPort"] for p in container["ports"]}
    for port in service["spec"]["ports"]:
        assert named[port["targetPort"]] == port["port"]


def test_control_plane_deployment_runs_the_server_as_documented() -> None:
    deployment = find("Deployment", "hodei-control-plane")
    spec = _pod_template()["spec"]
    assert deployment["metadata"]["namespace"] == "hodei-system"
    assert spec["serviceAccountName"] == "hodei-control-plane"
    container = spec["containers"][0]
    assert container["envFrom"] == [{"configMapRef": {"name": "hodei-provider-config"}}]
    env = {e["name"]: e for e in container["env"]}
    assert env["HODEI_K8S_ENABLED"]["value"] == "1"
    assert env["HODEI_LOCAL_ENABLED"]["value"] == "0"
    assert env["HODEI_API_TOKEN"]["valueFrom"] == {
        "secretKeyRef": {"name": "hodei-api-token", "key": "token"}
    }
    plain = {name: e["value"] for name, e in env.items() if "value" in e}
    settings = load_server_settings({**_config_data(), **plain, "HODEI_API_TOKEN": "t"})
    assert settings.kubernetes.enabled and not settings.local_enabled
    https = {"port": "http", "scheme": "HTTPS"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", **https}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", **https}
    # TLS from the Secret hodei-tls, mounted where the variables point.
    assert settings.tls is not None
    tls_mount = next(m for m in container["volumeMounts"] if m["name"] == "tls")
    assert tls_mount["readOnly"] is True
    assert {settings.tls.cert_file, settings.tls.key_file} == {
        f"{tls_mount['mountPath']}/tls.crt",
        f"{tls_mount['mountPath']}/tls.key",
    }
    tls_volume = next(v for v in spec["volumes"] if v["name"] == "tls")
    assert tls_volume["secret"]["secretName"] == "hodei-tls"
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert settings.database_url == "sqlite:///var/lib/hodei/hodei.db"
    assert "/var/lib/hodei" in mounts and "/tmp" in mounts


def _dockerfile_instruction(name: str) -> list[str]:
    lines = [line for line in DOCKERFILE.read_text().splitlines() if line.startswith(f"{name} ")]
    assert lines, f"no {name} in the Dockerfile"
    value: list[str] = json.loads(lines[-1][len(name) + 1 :])
    return value


def test_deployment_command_is_the_image_entrypoint_and_cmd() -> None:
    container = _pod_template()["spec"]["containers"][0]
    entrypoint = _dockerfile_instruction("ENTRYPOINT")
    assert container["command"] + container["args"] == entrypoint + _dockerfile_instruction("CMD")


def test_worker_pods_run_hodei_from_the_image_path_as_the_image_user() -> None:
    dockerfile = DOCKERFILE.read_text()
    assert list(pods.WORKER_COMMAND[:1]) == _dockerfile_instruction("ENTRYPOINT")
    path = re.search(r"^ENV PATH=(\S+)", dockerfile, re.M)
    assert path and path.group(1).split(":")[0] == "/opt/hodei/bin"
    user = re.search(r"^USER (\d+):(\d+)$", dockerfile, re.M)
    assert user and int(user.group(1)) == pods.WORKER_UID == int(user.group(2))
    security = _pod_template()["spec"]["securityContext"]
    assert security["runAsUser"] == security["runAsGroup"] == pods.WORKER_UID
    assert "ARG BASE_IMAGE" in dockerfile and "FROM ${BASE_IMAGE}" in dockerfile


def test_control_plane_image_is_the_worker_image() -> None:
    container = _pod_template()["spec"]["containers"][0]
    assert container["image"] == _config_data()["HODEI_WORKER_IMAGE"]


def test_verify_expects_the_shipped_network_policies() -> None:
    """`hodei k8s verify` checks the workers' namespace; hodei-system's policies are the
    control plane's own (install.sh verifies they exist)."""
    policies = of_kind("NetworkPolicy")
    shipped = {
        p["metadata"]["name"]: p["spec"]
        for p in policies
        if p["metadata"]["namespace"] == "hodei-workers"
    }
    assert shipped == verify.expected_network_policies(verify.Layout())
    assert {p["metadata"]["namespace"] for p in policies} == {"hodei-workers", "hodei-system"}


def test_verify_layout_defaults_are_the_shipped_names() -> None:
    layout = verify.Layout.from_settings(KubernetesSettings())
    assert layout == verify.Layout()
    assert find("ServiceAccount", layout.worker_account)["metadata"]["namespace"] == (
        layout.workers_namespace
    )
    assert find("ServiceAccount", layout.control_plane_account)["metadata"]["namespace"] == (
        layout.system_namespace
    )
    assert find("ConfigMap", verify.PROVIDER_CONFIG)
    assert find("Deployment", verify.CONTROL_PLANE)
    assert find("Service", verify.CONTROL_PLANE)


def test_manifest_directory_has_no_unlisted_yaml() -> None:
    listed = {*ALL_FILES, "kustomization.yaml"}
    assert {p.name for p in DEPLOY.glob("*.yaml")} == listed


def _variables_read_by(loader: object) -> list[str]:
    asked: list[str] = []

    class Recorder(dict[str, str]):
        def get(self, key: str, default: object = None) -> object:  # type: ignore[override]
            asked.append(key)
            return default

    loader(Recorder())  # type: ignore[operator]
    return asked
