"""The resource types the emulator serves, as one table.

Discovery, OpenAPI, routing, RBAC checks and the store all read this table, so adding a
kind is one entry here. The values (plurals, short names, verbs, namespaced) are the
ones kube-apiserver 1.33 advertises for the same kinds.
"""

from __future__ import annotations

from dataclasses import dataclass

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
READ_VERBS = ("get", "list", "watch")


@dataclass(frozen=True)
class ResourceType:
    """One REST resource: where it lives, what it is called, what it supports."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    verbs: tuple[str, ...] = ALL_VERBS
    short_names: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    create_only: bool = False  # review objects: created, answered, never stored

    @property
    def api_version(self) -> str:
        """``v1`` or ``group/version``."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def singular(self) -> str:
        """Lower-case kind, as discovery's singularName."""
        return self.kind.lower()


_RBAC = "rbac.authorization.k8s.io"
_AUTHZ = "authorization.k8s.io"

RESOURCE_TYPES: tuple[ResourceType, ...] = (
    ResourceType(
        "",
        "v1",
        "Namespace",
        "namespaces",
        False,
        verbs=("create", "delete", "get", "list", "patch", "update", "watch"),
        short_names=("ns",),
        subresources=("status",),
    ),
    ResourceType("", "v1", "Node", "nodes", False, short_names=("no",), subresources=("status",)),
    ResourceType(
        "",
        "v1",
        "Pod",
        "pods",
        True,
        short_names=("po",),
        subresources=("status", "log", "eviction"),
        categories=("all",),
    ),
    ResourceType(
        "",
        "v1",
        "ResourceQuota",
        "resourcequotas",
        True,
        short_names=("quota",),
        subresources=("status",),
    ),
    ResourceType(
        "",
        "v1",
        "ServiceAccount",
        "serviceaccounts",
        True,
        short_names=("sa",),
        subresources=("token",),
    ),
    ResourceType("", "v1", "ConfigMap", "configmaps", True, short_names=("cm",)),
    ResourceType("", "v1", "Secret", "secrets", True),
    ResourceType(
        "",
        "v1",
        "Service",
        "services",
        True,
        verbs=("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"),
        short_names=("svc",),
        subresources=("status",),
        categories=("all",),
    ),
    ResourceType("", "v1", "Endpoints", "endpoints", True, short_names=("ep",)),
    ResourceType("", "v1", "Event", "events", True, short_names=("ev",)),
    ResourceType(
        "apps",
        "v1",
        "Deployment",
        "deployments",
        True,
        short_names=("deploy",),
        subresources=("status", "scale"),
        categories=("all",),
    ),
    ResourceType(
        "policy",
        "v1",
        "PodDisruptionBudget",
        "poddisruptionbudgets",
        True,
        short_names=("pdb",),
        subresources=("status",),
    ),
    ResourceType(_RBAC, "v1", "Role", "roles", True),
    ResourceType(_RBAC, "v1", "RoleBinding", "rolebindings", True),
    ResourceType(_RBAC, "v1", "ClusterRole", "clusterroles", False),
    ResourceType(_RBAC, "v1", "ClusterRoleBinding", "clusterrolebindings", False),
    ResourceType(
        "networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", True, short_names=("netpol",)
    ),
    ResourceType(
        _AUTHZ,
        "v1",
        "SelfSubjectAccessReview",
        "selfsubjectaccessreviews",
        False,
        verbs=("create",),
        create_only=True,
    ),
    ResourceType(
        _AUTHZ,
        "v1",
        "SubjectAccessReview",
        "subjectaccessreviews",
        False,
        verbs=("create",),
        create_only=True,
    ),
    ResourceType(
        _AUTHZ,
        "v1",
        "LocalSubjectAccessReview",
        "localsubjectaccessreviews",
        True,
        verbs=("create",),
        create_only=True,
    ),
    ResourceType(
        "authentication.k8s.io",
        "v1",
        "SelfSubjectReview",
        "selfsubjectreviews",
        False,
        verbs=("create",),
        create_only=True,
    ),
    ResourceType(
        _AUTHZ,
        "v1",
        "SelfSubjectRulesReview",
        "selfsubjectrulesreviews",
        False,
        verbs=("create",),
        create_only=True,
    ),
)

# Group -> preferred version, in the order /apis lists them.
GROUPS: tuple[tuple[str, str], ...] = (
    ("apps", "v1"),
    ("authentication.k8s.io", "v1"),
    (_AUTHZ, "v1"),
    ("networking.k8s.io", "v1"),
    ("policy", "v1"),
    (_RBAC, "v1"),
)


def find(group: str, version: str, plural: str) -> ResourceType | None:
    """The resource type served at ``group/version/plural``, if any."""
    for rtype in RESOURCE_TYPES:
        if rtype.group == group and rtype.version == version and rtype.plural == plural:
            return rtype
    return None


def by_kind(api_version: str, kind: str) -> ResourceType | None:
    """The resource type of a manifest's ``apiVersion`` and ``kind``."""
    for rtype in RESOURCE_TYPES:
        if rtype.api_version == api_version and rtype.kind == kind:
            return rtype
    return None


def by_plural(plural: str) -> ResourceType | None:
    """The resource type with this plural (plurals are unique in this table)."""
    for rtype in RESOURCE_TYPES:
        if rtype.plural == plural:
            return rtype
    return None


def resource_type(plural: str) -> ResourceType:
    """The served resource type with this plural; KeyError for unknown plurals."""
    rtype = by_plural(plural)
    if rtype is None:
        raise KeyError(plural)
    return rtype


def group_versions() -> list[tuple[str, str]]:
    """Every (group, version) served, the core group first."""
    return [("", "v1"), *GROUPS]
