"""Access reviews: SelfSubjectAccessReview, SubjectAccessReview, LocalSubjectAccessReview
and SelfSubjectRulesReview, answered by the same RBAC evaluator that guards requests,
so ``kubectl auth can-i`` says what the emulator would actually allow."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .. import errors
from ..codec import read_object, respond
from ..rbac import Attributes, UserInfo, subject_matches
from ..requestinfo import RequestInfo
from ..resources import ResourceType
from ..state import USER_KEY, EmulatorState, StorePolicy


def _attributes(spec: dict[str, Any]) -> Attributes:
    resource = spec.get("resourceAttributes")
    if resource:
        return Attributes(
            verb=resource.get("verb", ""),
            resource=resource.get("resource", ""),
            subresource=resource.get("subresource", ""),
            group=resource.get("group", ""),
            namespace=resource.get("namespace", ""),
            name=resource.get("name", ""),
        )
    non_resource = spec.get("nonResourceAttributes")
    if non_resource:
        return Attributes(
            verb=non_resource.get("verb", ""), is_resource=False, path=non_resource.get("path", "")
        )
    raise errors.invalid(
        "SubjectAccessReview",
        "",
        [
            (
                "spec.resourceAttributes",
                "FieldValueRequired",
                "Required value: exactly one of nonResourceAttributes or resourceAttributes "
                "must be specified",
            )
        ],
        "authorization.k8s.io",
    )


def _subject(rtype: ResourceType, spec: dict[str, Any], requester: UserInfo) -> UserInfo:
    if rtype.kind == "SelfSubjectAccessReview" or rtype.kind == "SelfSubjectRulesReview":
        return requester
    if not spec.get("user") and not spec.get("groups"):
        raise errors.invalid(
            rtype.kind,
            "",
            [
                (
                    "spec.user",
                    "FieldValueRequired",
                    'Invalid value: "": at least one of user or group must be specified',
                )
            ],
            "authorization.k8s.io",
        )
    return UserInfo(spec.get("user", ""), tuple(spec.get("groups") or ()))


async def handle(
    request: web.Request, state: EmulatorState, rtype: ResourceType, info: RequestInfo
) -> web.StreamResponse:
    """Answer one review (201 with ``status`` filled in)."""
    body = await read_object(request)
    if rtype.kind == "SelfSubjectReview":
        return respond(_whoami(rtype, request[USER_KEY]), 201)
    spec = body.get("spec") or {}
    user = _subject(rtype, spec, request[USER_KEY])
    if rtype.kind == "SelfSubjectRulesReview":
        status = _rules(state, user, spec.get("namespace", ""))
    else:
        attrs = _attributes(spec)
        if rtype.kind == "LocalSubjectAccessReview":
            attrs = Attributes(**{**attrs.__dict__, "namespace": info.namespace or ""})
        decision = state.authorize(user, attrs)
        status = {"allowed": decision.allowed}
        if decision.reason:
            status["reason"] = decision.reason
    metadata = dict(body.get("metadata") or {})
    metadata["creationTimestamp"] = None
    result = {
        "kind": rtype.kind,
        "apiVersion": rtype.api_version,
        "metadata": metadata,
        "spec": spec,
        "status": status,
    }
    return respond(result, 201)


def _whoami(rtype: ResourceType, user: UserInfo) -> dict[str, Any]:
    return {
        "kind": rtype.kind,
        "apiVersion": rtype.api_version,
        "metadata": {"creationTimestamp": None},
        "status": {"userInfo": {"username": user.name, "groups": list(user.groups)}},
    }


def _rules(state: EmulatorState, user: UserInfo, namespace: str) -> dict[str, Any]:
    policy = StorePolicy(state.store)
    rules: list[dict[str, Any]] = []
    bindings = [(b, "") for b in policy.cluster_role_bindings()]
    if namespace:
        bindings += [(b, namespace) for b in policy.role_bindings(namespace)]
    for binding, ns in bindings:
        if not any(subject_matches(s, user, ns) for s in binding.get("subjects") or []):
            continue
        ref = binding.get("roleRef") or {}
        role = (
            policy.cluster_role(ref.get("name", ""))
            if ref.get("kind") == "ClusterRole"
            else policy.role(ns, ref.get("name", ""))
        )
        rules.extend((role or {}).get("rules") or [])
    if "system:masters" in user.groups:
        rules.append({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]})
        rules.append({"verbs": ["*"], "nonResourceURLs": ["*"]})
    resource_rules = [
        {k: r[k] for k in ("verbs", "apiGroups", "resources", "resourceNames") if k in r}
        for r in rules
        if "nonResourceURLs" not in r
    ]
    non_resource = [
        {"verbs": r["verbs"], "nonResourceURLs": r["nonResourceURLs"]}
        for r in rules
        if "nonResourceURLs" in r
    ]
    return {"resourceRules": resource_rules, "nonResourceRules": non_resource, "incomplete": False}
