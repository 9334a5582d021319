"""Turn a request's method and path into the attributes authorization and routing use.

Mirrors ``k8s.io/apiserver/pkg/endpoints/request.RequestInfoFactory``: the verb comes from
the HTTP method plus whether a name is present (and ``watch`` in the query), and a
path below ``namespaces/NAME`` selects a namespaced resource except for the namespace's
own subresources.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

_NAMESPACE_SUBRESOURCES = {"status", "finalize"}
_METHOD_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


@dataclass(frozen=True)
class RequestInfo:
    """What a request is about; ``is_resource`` False for discovery and other paths."""

    is_resource: bool
    verb: str
    path: str
    group: str = ""
    version: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str | None = None
    name: str = ""

    @property
    def full_resource(self) -> str:
        """``pods`` or ``pods/log``, as RBAC rules and request counts name it."""
        return f"{self.resource}/{self.subresource}" if self.subresource else self.resource


def _is_watch(query: Mapping[str, str]) -> bool:
    return query.get("watch", "").lower() in ("true", "1")


def parse(method: str, path: str, query: Mapping[str, str]) -> RequestInfo:
    """Classify one request."""
    method = method.upper()
    parts = [p for p in path.strip("/").split("/") if p]
    non_resource_verb = method.lower()
    if len(parts) < 3 or parts[0] not in ("api", "apis"):
        return RequestInfo(False, non_resource_verb, path)
    if parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    else:
        if len(parts) < 4:
            return RequestInfo(False, non_resource_verb, path)
        group, version, rest = parts[1], parts[2], parts[3:]
    watch_prefix = rest[0] == "watch"
    if watch_prefix:
        rest = rest[1:]
    if not rest:
        return RequestInfo(False, non_resource_verb, path)
    namespace: str | None = None
    if rest[0] == "namespaces" and len(rest) > 1:
        namespace = rest[1]
        if len(rest) > 2 and rest[2] not in _NAMESPACE_SUBRESOURCES:
            rest = rest[2:]
    resource = rest[0]
    name = rest[1] if len(rest) > 1 else ""
    subresource = rest[2] if len(rest) > 2 else ""
    if resource == "namespaces" and name:
        namespace = name
    if method in ("GET", "HEAD"):
        watch = watch_prefix or _is_watch(query)
        verb = "watch" if watch else ("get" if name else "list")
    else:
        verb = _METHOD_VERBS.get(method, method.lower())
        if verb == "delete" and not name:
            verb = "deletecollection"
    return RequestInfo(True, verb, path, group, version, resource, subresource, namespace, name)
