"""The pure checks behind `hodei k8s verify`, on cluster states made from the shipped manifests."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from hodei.providers.kubernetes import verify
from hodei.providers.kubernetes.verify import Access, ClusterState, Layout, Status
from tests.deploy.manifests import find, of_kind

LAYOUT = Layout()


def _available(deployment: dict[str, Any], replicas: int = 1) -> dict[str, Any]:
    """The Deployment as its controller reports it once a replica serves."""
    deployment["status"] = {
        "replicas": replicas,
        "availableReplicas": replicas,
        "conditions": [
            {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"}
        ],
    }
    return deployment


def _installed(**changes: Any) -> ClusterState:
    """The state a correct install (with the control plane) reads back as."""
    namespaces = {}
    for ns in of_kind("Namespace"):
        ns["metadata"]["labels"]["kubernetes.io/metadata.name"] = ns["metadata"]["name"]
        namespaces[ns["metadata"]["name"]] = ns
    accounts = {
        f"{sa['metadata']['namespace']}/{sa['metadata']['name']}": sa
        for sa in of_kind("ServiceAccount")
    }
    state = ClusterState(
        namespaces=namespaces,
        service_accounts=accounts,
        role=find("Role", "hodei-provider"),
        role_binding=find("RoleBinding", "hodei-provider"),
        network_policies={p["metadata"]["name"]: p for p in of_kind("NetworkPolicy")},
        config_map=find("ConfigMap", "hodei-provider-config"),
        access={q: q.allowed for q in verify.expected_access(LAYOUT)},
        access_identity=LAYOUT.control_plane_user,
        deployment=_available(find("Deployment", "hodei-control-plane")),
        service=find("Service", "hodei-control-plane"),
        api_token_secret={"data": {"token": "c2VjcmV0"}},
    )
    return dataclasses.replace(state, **changes)


def _failures(state: ClusterState) -> list[verify.CheckResult]:
    return [r for r in verify.run_checks(LAYOUT, state) if r.status is Status.FAIL]


def test_correct_install_passes_every_check() -> None:
    results = verify.run_checks(LAYOUT, _installed())
    assert [r for r in results if r.status is not Status.OK] == []
    assert verify.exit_code(results) == 0
    # One line each: 2 namespaces, 2 accounts, role, binding, 2 policies, configmap,
    # 11 access questions, deployment identity and availability, service, secret.
    assert len(results) == 24


def test_missing_role_binding_fails_with_the_fix() -> None:
    [failure] = _failures(_installed(role_binding=None))
    assert failure.subject == "RoleBinding hodei-provider in hodei-workers"
    assert "kubectl apply -f deploy/kubernetes/rbac.yaml" in failure.fix
    assert "fix: kubectl apply -f deploy/kubernetes/rbac.yaml" in failure.line()
    assert failure.line().startswith("FAIL  RoleBinding hodei-provider in hodei-workers: not found")


def test_binding_to_someone_else_fails() -> None:
    binding = find("RoleBinding", "hodei-provider")
    binding["subjects"][0]["name"] = "default"
    [failure] = _failures(_installed(role_binding=binding))
    assert "does not bind hodei-system/hodei-control-plane" in failure.detail


def test_missing_namespace_fails_with_the_fix() -> None:
    namespaces = dict(_installed().namespaces, **{"hodei-workers": None})
    failures = _failures(_installed(namespaces=namespaces))
    assert [f.subject for f in failures] == ["Namespace hodei-workers"]
    assert "namespace.yaml" in failures[0].fix


def test_workers_namespace_without_restricted_enforcement_fails() -> None:
    ns = find("Namespace", "hodei-workers")
    del ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"]
    namespaces = dict(_installed().namespaces, **{"hodei-workers": ns})
    [failure] = _failures(_installed(namespaces=namespaces))
    assert "pod-security.kubernetes.io/enforce=restricted" in failure.detail


def test_missing_or_changed_policy_fails() -> None:
    policies = {p["metadata"]["name"]: p for p in of_kind("NetworkPolicy")}
    del policies["hodei-default-deny"]
    [missing] = _failures(_installed(network_policies=policies))
    assert missing.subject == "NetworkPolicy hodei-default-deny in hodei-workers"
    assert "network-policy.yaml" in missing.fix

    policies = {p["metadata"]["name"]: p for p in of_kind("NetworkPolicy")}
    policies["hodei-worker-egress"]["spec"]["egress"][2]["ports"][0]["port"] = 80
    [changed] = _failures(_installed(network_policies=policies))
    assert changed.detail == "spec differs from the shipped one"


def test_server_omissions_do_not_count_as_differences() -> None:
    policies = {p["metadata"]["name"]: p for p in of_kind("NetworkPolicy")}
    policies["hodei-worker-egress"]["spec"]["ingress"] = []
    policies["hodei-worker-egress"]["spec"]["egress"][0]["to"] = None
    assert _failures(_installed(network_policies=policies)) == []


def test_extra_role_rule_fails() -> None:
    role = find("Role", "hodei-provider")
    role["rules"].append({"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]})
    [failure] = _failures(_installed(role=role))
    assert failure.subject == "Role hodei-provider in hodei-workers"


def test_denied_permission_fails_and_extra_permission_warns() -> None:
    access = {q: q.allowed for q in verify.expected_access(LAYOUT)}
    access[Access("watch", "pods", "hodei-workers")] = False
    access[Access("get", "secrets", "hodei-workers", allowed=False)] = True
    results = verify.run_checks(LAYOUT, _installed(access=access))
    by_status = {r.status: r for r in results if r.status is not Status.OK}
    assert by_status[Status.FAIL].subject.endswith("may watch pods in hodei-workers")
    assert by_status[Status.WARN].subject.endswith("may get secrets in hodei-workers")
    assert verify.exit_code(results) == 1


def test_invalid_configmap_value_fails_naming_variable_and_fix() -> None:
    config = find("ConfigMap", "hodei-provider-config")
    config["data"]["HODEI_K8S_DEFAULT_CPU_REQUEST"] = "abc"
    [failure] = _failures(_installed(config_map=config))
    assert "HODEI_K8S_DEFAULT_CPU_REQUEST='abc' is invalid" in failure.detail
    assert failure.fix == "kubectl -n hodei-system edit configmap hodei-provider-config"


def test_configmap_naming_another_namespace_fails() -> None:
    config = find("ConfigMap", "hodei-provider-config")
    config["data"]["HODEI_K8S_NAMESPACE"] = "elsewhere"
    [failure] = _failures(_installed(config_map=config))
    assert "HODEI_K8S_NAMESPACE is elsewhere" in failure.detail


def test_worker_account_with_token_fails() -> None:
    accounts = dict(_installed().service_accounts)
    sa = find("ServiceAccount", "hodei-worker")
    del sa["automountServiceAccountToken"]
    accounts["hodei-workers/hodei-worker"] = sa
    [failure] = _failures(_installed(service_accounts=accounts))
    assert "automountServiceAccountToken" in failure.detail


def test_control_plane_is_optional_but_checked_when_deployed() -> None:
    results = verify.run_checks(LAYOUT, _installed(deployment=None, service=None))
    skipped = [r for r in results if r.status is Status.SKIP]
    assert [r.subject for r in skipped] == ["Deployment hodei-control-plane in hodei-system"]
    assert verify.exit_code(results) == 0

    [failure] = _failures(_installed(api_token_secret=None))
    assert failure.subject == "Secret hodei-api-token in hodei-system"
    assert "--with-control-plane" in failure.fix


def test_a_deployment_that_is_present_but_not_available_fails_saying_why() -> None:
    created = find("Deployment", "hodei-control-plane")  # no status: nothing ran yet
    [failure] = _failures(_installed(deployment=created))
    assert failure.detail == "present but not available: 0/1 replicas available"
    assert "rollout status deployment/hodei-control-plane" in failure.fix
    stuck = find("Deployment", "hodei-control-plane")
    stuck["status"] = {
        "replicas": 1,
        "unavailableReplicas": 1,
        "conditions": [
            {
                "type": "Available",
                "status": "False",
                "reason": "MinimumReplicasUnavailable",
                "message": "Deployment does not have minimum availability.",
            }
        ],
    }
    [failure] = _failures(_installed(deployment=stuck))
    assert failure.detail == (
        "present but not available: 0/1 replicas available (MinimumReplicasUnavailable: "
        "Deployment does not have minimum availability.)"
    )
    ok = [r for r in verify.run_checks(LAYOUT, _installed()) if "available" in r.detail]
    assert [r.line() for r in ok] == [
        "ok    Deployment hodei-control-plane in hodei-system: available: 1/1 replicas"
    ]


@pytest.mark.parametrize("namespace", ["team-a", "hodei-workers"])
def test_layout_follows_the_provider_settings(namespace: str) -> None:
    from hodei.config.settings import KubernetesSettings

    layout = Layout.from_settings(KubernetesSettings(namespace=namespace, service_account="sa"))
    assert layout.workers_namespace == namespace and layout.worker_account == "sa"
    assert all(q.namespace in (namespace, "default") for q in verify.expected_access(layout))


def test_variables_read_include_every_provider_variable() -> None:
    names = verify.variables_read()
    assert "HODEI_K8S_NAMESPACE" in names and "HODEI_SERVER_ADDRESS" in names
    assert len(names) == len(set(names))
