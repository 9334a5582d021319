"""RBAC authorization, as pure functions over Role/ClusterRole/binding objects.

Follows ``k8s.io/kubernetes/plugin/pkg/auth/authorizer/rbac``: ClusterRoleBindings grant
their ClusterRole everywhere; RoleBindings grant a Role (same namespace) or a ClusterRole
inside their namespace only. A rule matches when its verbs, apiGroups, resources
(``pods``, ``pods/log``, ``*``, ``*/log``) and resourceNames all match, or for non-resource
requests its nonResourceURLs (``/api/*`` prefix form). Members of ``system:masters`` are
allowed everything, as by the apiserver's privileged-group authorizer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

Obj = Mapping[str, Any]
PRIVILEGED_GROUP = "system:masters"


@dataclass(frozen=True)
class UserInfo:
    """An authenticated identity."""

    name: str
    groups: tuple[str, ...] = ()
    extra: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Attributes:
    """What is being asked: one verb on one resource (or a non-resource path)."""

    verb: str
    resource: str = ""
    subresource: str = ""
    group: str = ""
    namespace: str = ""
    name: str = ""
    is_resource: bool = True
    path: str = ""


@dataclass(frozen=True)
class Decision:
    """The answer and, like the real authorizer, why."""

    allowed: bool
    reason: str = ""


class Policy(Protocol):
    """Where bindings and roles come from (the store, or plain lists in tests)."""

    def cluster_role_bindings(self) -> Iterable[Obj]: ...

    def role_bindings(self, namespace: str) -> Iterable[Obj]: ...

    def cluster_role(self, name: str) -> Obj | None: ...

    def role(self, namespace: str, name: str) -> Obj | None: ...


@dataclass
class ListPolicy:
    """A `Policy` over in-memory lists of objects."""

    objects: list[Obj]

    def _of(self, kind: str) -> Iterable[Obj]:
        return (obj for obj in self.objects if obj.get("kind") == kind)

    def cluster_role_bindings(self) -> Iterable[Obj]:
        return self._of("ClusterRoleBinding")

    def role_bindings(self, namespace: str) -> Iterable[Obj]:
        return (b for b in self._of("RoleBinding") if b["metadata"].get("namespace") == namespace)

    def cluster_role(self, name: str) -> Obj | None:
        return next((r for r in self._of("ClusterRole") if r["metadata"]["name"] == name), None)

    def role(self, namespace: str, name: str) -> Obj | None:
        return next(
            (
                r
                for r in self._of("Role")
                if r["metadata"]["name"] == name and r["metadata"].get("namespace") == namespace
            ),
            None,
        )


def subject_matches(subject: Obj, user: UserInfo, binding_namespace: str) -> bool:
    """Whether a binding subject names this user (directly, by group or as ServiceAccount)."""
    kind = subject.get("kind")
    name: str = subject.get("name", "")
    if kind == "User":
        return name == user.name
    if kind == "Group":
        return name in user.groups
    if kind == "ServiceAccount":
        namespace = subject.get("namespace") or binding_namespace
        return user.name == f"system:serviceaccount:{namespace}:{name}"
    return False


def _has(values: Iterable[str] | None, wanted: str) -> bool:
    values = list(values or ())
    return "*" in values or wanted in values


def resource_matches(rule_resources: Iterable[str] | None, attrs: Attributes) -> bool:
    """``pods/log`` needs ``pods/log``, ``*`` or ``*/log``; plain ``pods`` does not cover it."""
    combined = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
    for rule_resource in rule_resources or ():
        if rule_resource in ("*", combined):
            return True
        if attrs.subresource and rule_resource == f"*/{attrs.subresource}":
            return True
    return False


def _url_matches(patterns: Iterable[str] | None, path: str) -> bool:
    for pattern in patterns or ():
        if pattern == "*" or pattern == path:
            return True
        if pattern.endswith("*") and path.startswith(pattern[:-1]):
            return True
    return False


def rule_allows(rule: Obj, attrs: Attributes) -> bool:
    """Whether one PolicyRule covers the request."""
    if not _has(rule.get("verbs"), attrs.verb):
        return False
    if not attrs.is_resource:
        return _url_matches(rule.get("nonResourceURLs"), attrs.path)
    if not _has(rule.get("apiGroups"), attrs.group):
        return False
    if not resource_matches(rule.get("resources"), attrs):
        return False
    names: list[str] = list(rule.get("resourceNames") or [])
    return not names or attrs.name in names


def _role_rules(policy: Policy, role_ref: Obj, namespace: str) -> list[Obj]:
    if role_ref.get("kind") == "ClusterRole":
        role = policy.cluster_role(role_ref.get("name", ""))
    elif role_ref.get("kind") == "Role" and namespace:
        role = policy.role(namespace, role_ref.get("name", ""))
    else:
        role = None
    return list((role or {}).get("rules") or [])


def _binding_allows(policy: Policy, binding: Obj, user: UserInfo, attrs: Attributes) -> bool:
    namespace = binding.get("metadata", {}).get("namespace", "")
    if not any(subject_matches(s, user, namespace) for s in binding.get("subjects") or []):
        return False
    rules = _role_rules(policy, binding.get("roleRef") or {}, namespace)
    return any(rule_allows(rule, attrs) for rule in rules)


def authorize(policy: Policy, user: UserInfo, attrs: Attributes) -> Decision:
    """Evaluate the request against every binding that could apply."""
    if PRIVILEGED_GROUP in user.groups:
        return Decision(True, "")
    for binding in policy.cluster_role_bindings():
        if _binding_allows(policy, binding, user, attrs):
            ref = binding.get("roleRef", {}).get("name", "")
            name = binding["metadata"]["name"]
            return Decision(
                True, f'RBAC: allowed by ClusterRoleBinding "{name}" of ClusterRole "{ref}"'
            )
    if attrs.is_resource and attrs.namespace:
        for binding in policy.role_bindings(attrs.namespace):
            if _binding_allows(policy, binding, user, attrs):
                ref = binding.get("roleRef", {})
                name = binding["metadata"]["name"]
                return Decision(
                    True,
                    f'RBAC: allowed by RoleBinding "{name}/{attrs.namespace}" of '
                    f'{ref.get("kind")} "{ref.get("name")}"',
                )
    return Decision(False, "")
