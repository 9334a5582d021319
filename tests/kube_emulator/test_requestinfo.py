"""Request classification (RequestInfoFactory rules)."""

from __future__ import annotations

import pytest

from kube_emulator.requestinfo import parse


@pytest.mark.parametrize(
    ("method", "path", "query", "expected"),
    [
        ("GET", "/api/v1/namespaces/ns/pods", {}, ("list", "", "pods", "", "ns", "")),
        ("GET", "/api/v1/pods", {"watch": "true"}, ("watch", "", "pods", "", None, "")),
        ("GET", "/api/v1/namespaces/ns/pods", {"watch": "1"}, ("watch", "", "pods", "", "ns", "")),
        ("GET", "/api/v1/watch/namespaces/ns/pods", {}, ("watch", "", "pods", "", "ns", "")),
        ("GET", "/api/v1/namespaces/ns/pods/p/log", {}, ("get", "", "pods", "log", "ns", "p")),
        (
            "PUT",
            "/api/v1/namespaces/ns/pods/p/status",
            {},
            ("update", "", "pods", "status", "ns", "p"),
        ),
        (
            "POST",
            "/apis/rbac.authorization.k8s.io/v1/namespaces/ns/roles",
            {},
            ("create", "rbac.authorization.k8s.io", "roles", "", "ns", ""),
        ),
        (
            "DELETE",
            "/api/v1/namespaces/ns/configmaps",
            {},
            ("deletecollection", "", "configmaps", "", "ns", ""),
        ),
        (
            "PATCH",
            "/api/v1/namespaces/ns/configmaps/c",
            {},
            ("patch", "", "configmaps", "", "ns", "c"),
        ),
        ("GET", "/api/v1/namespaces/ns", {}, ("get", "", "namespaces", "", "ns", "ns")),
        (
            "PUT",
            "/api/v1/namespaces/ns/finalize",
            {},
            ("update", "", "namespaces", "finalize", "ns", "ns"),
        ),
        ("GET", "/api/v1/namespaces", {}, ("list", "", "namespaces", "", None, "")),
    ],
)
def test_resource_requests(
    method: str, path: str, query: dict[str, str], expected: tuple[object, ...]
) -> None:
    info = parse(method, path, query)
    assert info.is_resource
    assert (
        info.verb,
        info.group,
        info.resource,
        info.subresource,
        info.namespace,
        info.name,
    ) == expected


@pytest.mark.parametrize(
    "path", ["/api", "/api/v1", "/apis", "/apis/apps/v1", "/version", "/openapi/v3"]
)
def test_non_resource_requests(path: str) -> None:
    info = parse("GET", path, {})
    assert not info.is_resource
    assert info.verb == "get"
