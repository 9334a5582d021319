"""The deployment README says what the files and the code do."""

from __future__ import annotations

import json
import re
import shlex

import yaml

from hodei.config.settings import KubernetesSettings, load_server_settings
from hodei.providers.kubernetes import verify
from kube_emulator import podsecurity as pss
from tests.deploy import readme
from tests.deploy.manifests import (
    ALL_FILES,
    INSTALL_SH,
    KUSTOMIZATION_FILES,
    POD_TEMPLATES_FILE,
    PROVIDER_FILES,
    find,
    load,
)

# The variables the product started from, with their defaults, in its order.
SEED_DEFAULTS = {
    "HODEI_K8S_ENABLED": "0",
    "HODEI_K8S_NAMESPACE": "hodei-workers",
    "HODEI_K8S_KUBECONFIG": None,
    "HODEI_K8S_CONTEXT": None,
    "HODEI_K8S_SERVICE_ACCOUNT": "hodei-worker",
    "HODEI_K8S_IMAGE_PULL_SECRET": None,
    "HODEI_K8S_DEFAULT_CPU_REQUEST": "100m",
    "HODEI_K8S_DEFAULT_MEMORY_REQUEST": "128Mi",
}


def _variables() -> dict[str, list[str]]:
    rows = readme.table("Configuration", "Variable")
    return {row[0].strip("`"): row for row in rows}


def _code(cell: str) -> str | None:
    """`value` -> value; prose (unset, derived ...) -> None."""
    match = re.fullmatch(r"`([^`]*)`", cell)
    return match.group(1) if match else None


def test_variables_table_starts_with_the_seed_variables_and_defaults() -> None:
    names = list(_variables())
    assert names[: len(SEED_DEFAULTS)] == list(SEED_DEFAULTS)
    for name, default in SEED_DEFAULTS.items():
        assert _code(_variables()[name][2]) == default, name


def test_variables_table_defaults_are_the_settings_defaults() -> None:
    documented = {name: _code(row[2]) for name, row in _variables().items()}
    parsed = load_server_settings({k: v for k, v in documented.items() if v is not None})
    assert parsed.kubernetes == KubernetesSettings()
    assert parsed.server_address is None  # "derived at startup"


def test_variables_table_in_cluster_column_is_configmap_yaml() -> None:
    data = find("ConfigMap", "hodei-provider-config")["data"]
    rows = _variables()
    assert set(rows) == set(data)
    for name, row in rows.items():
        assert (_code(row[3]) or "") == data[name], name
    assert set(rows) <= set(verify.variables_read())


def test_manifests_table_lists_every_file() -> None:
    files = [row[0].strip("`") for row in readme.table("Configuration", "File")]
    assert files == [*ALL_FILES, "kustomization.yaml", "install.sh"]


def test_rbac_section_shows_the_role_rules() -> None:
    block = re.search(r"```yaml\n(.*?)```", readme.section("RBAC Permissions"), re.S)
    assert block is not None
    assert yaml.safe_load(block.group(1))["rules"] == find("Role", "hodei-provider")["rules"]


def test_quick_start_order_is_the_install_order() -> None:
    applied = [
        c.removeprefix("kubectl apply -f ")
        for c in readme.commands("Quick Start")
        if c.startswith("kubectl apply -f ")
    ]
    assert tuple(applied) == PROVIDER_FILES
    script = INSTALL_SH.read_text()
    listed = re.search(r"^readonly MANIFESTS=\(([^)]*)\)", script, re.M)
    assert listed is not None and tuple(listed.group(1).split()) == PROVIDER_FILES
    assert tuple(load("kustomization.yaml")[0]["resources"]) == KUSTOMIZATION_FILES
    # pod-templates.yaml is created once, never applied over the operator's profiles.
    assert f"kubectl create -f {POD_TEMPLATES_FILE}" in readme.commands("Quick Start")


def test_cleanup_deletes_both_namespaces() -> None:
    assert readme.commands("Cleanup") == [
        "kubectl delete namespace hodei-workers",
        "kubectl delete namespace hodei-system",
    ]


def test_network_policy_section_names_the_ports() -> None:
    text = readme.section("Network Policies")
    for words in ("UDP and TCP 53", "TCP 50051", "TCP 443", "**Ingress**: Denied"):
        assert words in text
    for name in verify.expected_network_policies(verify.Layout()):
        assert f"`{name}`" in text


def test_readme_test_pod_meets_the_restricted_profile_the_plain_one_does_not() -> None:
    [run] = [c for c in readme.commands("Verification") if c.startswith("kubectl run ")]
    argv = shlex.split(run)
    overrides = json.loads(next(a for a in argv if a.startswith("--overrides=")).split("=", 1)[1])
    assert pss.violations(overrides["spec"]) == []
    assert overrides["spec"]["containers"][0]["name"] == argv[2] == "test-worker"
    assert pss.violations({"containers": [{"name": "test-worker", "image": "alpine"}]})
