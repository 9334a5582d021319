"""API failures become messages naming verb, resource, namespace and the fix."""

from __future__ import annotations

from hodei.providers.kubernetes.errors import api_error, parse_retry_after


def test_forbidden_names_verb_resource_namespace_and_rbac_file() -> None:
    body = {
        "kind": "Status",
        "status": "Failure",
        "reason": "Forbidden",
        "code": 403,
        "message": 'pods is forbidden: User "system:serviceaccount:hodei-system:x" cannot '
        'create resource "pods" in API group "" in the namespace "hodei-workers"',
    }
    exc = api_error(
        status=403, body=body, verb="create", resource="pods", namespace="hodei-workers"
    )
    text = str(exc)
    assert '"create pods" in namespace "hodei-workers"' in text
    assert "deploy/kubernetes/rbac.yaml" in text
    assert str(body["message"]) in text
    assert not exc.retryable


def test_missing_namespace_points_at_install_script() -> None:
    body = {
        "kind": "Status",
        "reason": "NotFound",
        "code": 404,
        "message": 'namespaces "hodei-workers" not found',
        "details": {"name": "hodei-workers", "kind": "namespaces"},
    }
    exc = api_error(status=404, body=body, verb="list", resource="pods", namespace="hodei-workers")
    assert "deploy/kubernetes/install.sh" in str(exc)
    assert '"hodei-workers" does not exist' in str(exc)
    assert exc.not_found


def test_pod_not_found_is_plain() -> None:
    body = {
        "reason": "NotFound",
        "message": 'pods "hodei-worker-w-1" not found',
        "details": {"name": "hodei-worker-w-1", "kind": "pods"},
    }
    exc = api_error(status=404, body=body, verb="delete", resource="pods", namespace="ns")
    assert "install.sh" not in str(exc)
    assert exc.not_found


def test_already_exists_and_retryable_statuses() -> None:
    exists = api_error(
        status=409, body={"reason": "AlreadyExists"}, verb="create", resource="pods", namespace="n"
    )
    assert exists.already_exists
    conflict = api_error(
        status=409, body={"reason": "Conflict"}, verb="create", resource="pods", namespace="n"
    )
    assert not conflict.already_exists
    for status in (429, 500, 503):
        assert api_error(
            status=status, body={}, verb="get", resource="pods", namespace="n"
        ).retryable


def test_retry_after_header() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
