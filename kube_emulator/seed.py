"""Objects every fresh cluster has: system namespaces, default ServiceAccounts, the
``kubernetes`` Service and the bootstrap RBAC that lets any authenticated identity do
discovery and ask what it may do (``system:discovery``, ``system:basic-user``)."""

from __future__ import annotations

from typing import Any

from . import admission
from .resources import resource_type
from .store import Store

_DISCOVERY_URLS = [
    "/api",
    "/api/*",
    "/apis",
    "/apis/*",
    "/healthz",
    "/livez",
    "/openapi",
    "/openapi/*",
    "/readyz",
    "/version",
    "/version/",
]
_PUBLIC_URLS = ["/healthz", "/livez", "/readyz", "/version", "/version/"]
_BOOTSTRAP_LABELS = {"kubernetes.io/bootstrapping": "rbac-defaults"}
_AUTOUPDATE = {"rbac.authorization.kubernetes.io/autoupdate": "true"}
SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


def _cluster_role(name: str, rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": _BOOTSTRAP_LABELS, "annotations": _AUTOUPDATE},
        "rules": rules,
    }


def _binding(name: str, role: str, groups: list[str]) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": _BOOTSTRAP_LABELS, "annotations": _AUTOUPDATE},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [
            {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": group}
            for group in groups
        ],
    }


_READ = ["get", "list", "watch"]
CLUSTER_ROLES = [
    _cluster_role(
        "cluster-admin",
        [
            {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
            {"nonResourceURLs": ["*"], "verbs": ["*"]},
        ],
    ),
    _cluster_role("system:discovery", [{"nonResourceURLs": _DISCOVERY_URLS, "verbs": ["get"]}]),
    _cluster_role(
        "system:public-info-viewer", [{"nonResourceURLs": _PUBLIC_URLS, "verbs": ["get"]}]
    ),
    _cluster_role(
        "system:basic-user",
        [
            {
                "apiGroups": ["authorization.k8s.io"],
                "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                "verbs": ["create"],
            },
            {
                "apiGroups": ["authentication.k8s.io"],
                "resources": ["selfsubjectreviews"],
                "verbs": ["create"],
            },
        ],
    ),
    _cluster_role(
        "view",
        [
            {
                "apiGroups": [""],
                "resources": [
                    "configmaps",
                    "endpoints",
                    "events",
                    "pods",
                    "pods/log",
                    "pods/status",
                    "serviceaccounts",
                    "services",
                    "namespaces",
                ],
                "verbs": _READ,
            },
            {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": _READ},
            {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"], "verbs": _READ},
        ],
    ),
]
CLUSTER_ROLE_BINDINGS = [
    _binding("cluster-admin", "cluster-admin", ["system:masters"]),
    _binding("system:discovery", "system:discovery", ["system:authenticated"]),
    _binding("system:basic-user", "system:basic-user", ["system:authenticated"]),
    _binding(
        "system:public-info-viewer",
        "system:public-info-viewer",
        ["system:authenticated", "system:unauthenticated"],
    ),
]


def seed(store: Store) -> None:
    """Create the objects of a new cluster (namespaces first, then what lives in them)."""
    namespaces, services = resource_type("namespaces"), resource_type("services")
    roles, bindings = resource_type("clusterroles"), resource_type("clusterrolebindings")
    for name in SYSTEM_NAMESPACES:
        ns: dict[str, Any] = {"metadata": {"name": name}}
        admission.prepare_create("namespaces", ns)
        store.create(namespaces, None, ns)
    kubernetes = {
        "metadata": {
            "name": "kubernetes",
            "labels": {"component": "apiserver", "provider": "kubernetes"},
        },
        "spec": {
            "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}],
            "clusterIP": "10.96.0.1",
        },
    }
    admission.prepare_create("services", kubernetes)
    store.create(services, "default", kubernetes)
    for role in CLUSTER_ROLES:
        store.create(roles, None, role)
    for binding in CLUSTER_ROLE_BINDINGS:
        store.create(bindings, None, binding)
