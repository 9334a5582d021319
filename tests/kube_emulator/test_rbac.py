"""RBAC evaluation (rules from the Kubernetes docs: reference/access-authn-authz/rbac)."""

from __future__ import annotations

from typing import Any

from kube_emulator.auth import serviceaccount_user
from kube_emulator.rbac import Attributes, ListPolicy, UserInfo, authorize

SA = serviceaccount_user("hodei-system", "hodei-control-plane")


def role(name: str, namespace: str, rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {"kind": "Role", "metadata": {"name": name, "namespace": namespace}, "rules": rules}


def cluster_role(name: str, rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {"kind": "ClusterRole", "metadata": {"name": name}, "rules": rules}


def binding(
    kind: str,
    name: str,
    ref_kind: str,
    ref: str,
    subjects: list[dict[str, str]],
    namespace: str = "",
) -> dict[str, Any]:
    meta = {"name": name, "namespace": namespace} if namespace else {"name": name}
    return {
        "kind": kind,
        "metadata": meta,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": ref_kind, "name": ref},
        "subjects": subjects,
    }


SA_SUBJECT = {"kind": "ServiceAccount", "name": "hodei-control-plane", "namespace": "hodei-system"}
PROVIDER_POLICY = ListPolicy(
    [
        role(
            "hodei-provider",
            "hodei-workers",
            [
                {
                    "apiGroups": [""],
                    "resources": ["pods"],
                    "verbs": ["create", "delete", "get", "list", "watch"],
                },
                {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
                {"apiGroups": [""], "resources": ["pods/status"], "verbs": ["get"]},
            ],
        ),
        binding(
            "RoleBinding", "hodei-provider", "Role", "hodei-provider", [SA_SUBJECT], "hodei-workers"
        ),
    ]
)


def allowed(policy: ListPolicy, user: UserInfo, **attrs: Any) -> bool:
    return authorize(policy, user, Attributes(**attrs)).allowed


def test_role_binding_grants_only_inside_its_namespace() -> None:
    assert allowed(PROVIDER_POLICY, SA, verb="create", resource="pods", namespace="hodei-workers")
    assert not allowed(PROVIDER_POLICY, SA, verb="create", resource="pods", namespace="default")
    assert not allowed(PROVIDER_POLICY, SA, verb="list", resource="pods")  # cluster-wide


def test_subresources_need_their_own_rule() -> None:
    ns = "hodei-workers"
    assert allowed(
        PROVIDER_POLICY, SA, verb="get", resource="pods", subresource="log", namespace=ns
    )
    assert not allowed(
        PROVIDER_POLICY, SA, verb="update", resource="pods", subresource="status", namespace=ns
    )
    assert not allowed(
        PROVIDER_POLICY, SA, verb="create", resource="pods", subresource="exec", namespace=ns
    )


def test_verbs_groups_and_kinds_not_granted_are_denied() -> None:
    ns = "hodei-workers"
    for verb, resource in [
        ("patch", "pods"),
        ("update", "pods"),
        ("get", "secrets"),
        ("create", "events"),
    ]:
        assert not allowed(PROVIDER_POLICY, SA, verb=verb, resource=resource, namespace=ns)
    assert not allowed(PROVIDER_POLICY, SA, verb="get", resource="pods", group="apps", namespace=ns)


def test_other_serviceaccounts_do_not_match() -> None:
    other = serviceaccount_user("hodei-workers", "hodei-control-plane")
    assert not allowed(
        PROVIDER_POLICY, other, verb="get", resource="pods", namespace="hodei-workers"
    )


def test_wildcards_resource_names_and_star_subresource() -> None:
    user = UserInfo("alice", ("devs",))
    policy = ListPolicy(
        [
            cluster_role(
                "reader",
                [
                    {"apiGroups": ["*"], "resources": ["*/log"], "verbs": ["get"]},
                    {
                        "apiGroups": [""],
                        "resources": ["configmaps"],
                        "verbs": ["*"],
                        "resourceNames": ["settings"],
                    },
                ],
            ),
            binding(
                "ClusterRoleBinding",
                "devs-read",
                "ClusterRole",
                "reader",
                [{"kind": "Group", "name": "devs"}],
            ),
        ]
    )
    assert allowed(policy, user, verb="get", resource="pods", subresource="log", namespace="x")
    assert not allowed(policy, user, verb="get", resource="pods", namespace="x")
    assert allowed(
        policy, user, verb="delete", resource="configmaps", name="settings", namespace="x"
    )
    assert not allowed(
        policy, user, verb="delete", resource="configmaps", name="other", namespace="x"
    )
    assert not allowed(policy, user, verb="list", resource="configmaps", namespace="x")


def test_rolebinding_to_clusterrole_is_namespaced() -> None:
    user = UserInfo("bob")
    policy = ListPolicy(
        [
            cluster_role("view", [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]),
            binding(
                "RoleBinding",
                "bob-view",
                "ClusterRole",
                "view",
                [{"kind": "User", "name": "bob"}],
                "team",
            ),
        ]
    )
    assert allowed(policy, user, verb="get", resource="pods", namespace="team")
    assert not allowed(policy, user, verb="get", resource="pods", namespace="other")


def test_role_reference_to_missing_role_grants_nothing() -> None:
    policy = ListPolicy(
        [binding("RoleBinding", "b", "Role", "ghost", [{"kind": "User", "name": "bob"}], "team")]
    )
    assert not allowed(policy, UserInfo("bob"), verb="get", resource="pods", namespace="team")


def test_non_resource_urls_with_prefix_wildcards() -> None:
    policy = ListPolicy(
        [
            cluster_role("disc", [{"nonResourceURLs": ["/api", "/apis/*"], "verbs": ["get"]}]),
            binding(
                "ClusterRoleBinding",
                "disc",
                "ClusterRole",
                "disc",
                [{"kind": "Group", "name": "system:authenticated"}],
            ),
        ]
    )
    user = UserInfo("carol", ("system:authenticated",))
    assert allowed(policy, user, verb="get", is_resource=False, path="/apis/apps/v1")
    assert allowed(policy, user, verb="get", is_resource=False, path="/api")
    assert not allowed(policy, user, verb="get", is_resource=False, path="/api/v1")
    assert not allowed(policy, user, verb="post", is_resource=False, path="/api")


def test_system_masters_may_do_anything() -> None:
    admin = UserInfo("admin", ("system:masters",))
    assert allowed(ListPolicy([]), admin, verb="delete", resource="nodes")
