"""API failures become messages naming verb, resource, namespace and the fix."""

from __future__ import annotations

from typing import Any

import pytest

from hodei.providers.kubernetes.errors import (
    CAUSES,
    Cause,
    api_error,
    cause_of,
    parse_retry_after,
)


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


# Status bodies as kube-apiserver's admission plugins and REST storage send them.
QUOTA_BODY = {
    "kind": "Status",
    "reason": "Forbidden",
    "code": 403,
    "message": 'pods "hodei-worker-w-1" is forbidden: exceeded quota: one-pod, requested: '
    "pods=1, used: pods=1, limited: pods=1",
    "details": {"name": "hodei-worker-w-1", "kind": "pods"},
}
TERMINATING_BODY = {
    "reason": "Forbidden",
    "code": 403,
    "message": 'pods "hodei-worker-w-1" is forbidden: unable to create new content in '
    "namespace hodei-workers because it is being terminated",
    "details": {
        "name": "hodei-worker-w-1",
        "kind": "pods",
        "causes": [
            {
                "reason": "NamespaceTerminating",
                "message": "namespace hodei-workers is being terminated",
                "field": "metadata.namespace",
            }
        ],
    },
}
ACCOUNT_BODY = {
    "reason": "Forbidden",
    "code": 403,
    "message": 'pods "hodei-worker-w-1" is forbidden: error looking up service account '
    'hodei-workers/hodei-worker: serviceaccount "hodei-worker" not found',
}
RBAC_BODY = {
    "reason": "Forbidden",
    "code": 403,
    "message": 'pods is forbidden: User "system:serviceaccount:hodei-system:x" cannot create '
    'resource "pods" in API group "" in the namespace "hodei-workers"',
}
INVALID_BODY = {
    "reason": "Invalid",
    "code": 422,
    "message": 'Pod "hodei-worker-w-1" is invalid: spec.containers[0].image: Required value',
    "details": {
        "causes": [
            {
                "reason": "FieldValueRequired",
                "message": "Required value",
                "field": "spec.containers[0].image",
            }
        ]
    },
}


@pytest.mark.parametrize(
    ("status", "body", "cause"),
    [
        (403, QUOTA_BODY, Cause.QUOTA_EXCEEDED),
        (403, TERMINATING_BODY, Cause.NAMESPACE_TERMINATING),
        (403, {"message": TERMINATING_BODY["message"]}, Cause.NAMESPACE_TERMINATING),
        (403, ACCOUNT_BODY, Cause.SERVICE_ACCOUNT_MISSING),
        (403, RBAC_BODY, Cause.FORBIDDEN),
        (401, {"reason": "Unauthorized"}, Cause.UNAUTHORIZED),
        (400, {"reason": "BadRequest", "message": "bad quantity"}, Cause.INVALID),
        (422, INVALID_BODY, Cause.INVALID),
        (409, {"reason": "AlreadyExists"}, Cause.ALREADY_EXISTS),
        (409, {"reason": "Conflict"}, Cause.OTHER),
        (404, {"details": {"kind": "namespaces"}}, Cause.NAMESPACE_MISSING),
        (404, {"details": {"kind": "pods"}}, Cause.NOT_FOUND),
        (410, {"reason": "Expired"}, Cause.GONE),
        (429, {"reason": "TooManyRequests"}, Cause.TRANSIENT),
        (500, {}, Cause.TRANSIENT),
        (503, {}, Cause.TRANSIENT),
        (504, {}, Cause.TRANSIENT),
        (0, {}, Cause.TRANSIENT),
        (418, {}, Cause.OTHER),
    ],
)
def test_causes_are_read_from_the_status_not_the_code_alone(
    status: int, body: dict[str, Any], cause: Cause
) -> None:
    assert cause_of(status, body) is cause


def test_only_throttling_outages_and_quota_wait() -> None:
    waiting = {cause for cause, rule in CAUSES.items() if rule.waits}
    assert waiting == {Cause.TRANSIENT, Cause.QUOTA_EXCEEDED}
    assert set(CAUSES) == set(Cause)  # every cause has a rule
    assert CAUSES[Cause.QUOTA_EXCEEDED].reason == "QuotaExceeded"


def _create_error(status: int, body: dict[str, Any]) -> str:
    exc = api_error(
        status=status, body=body, verb="create", resource="pods", namespace="hodei-workers"
    )
    return str(exc)


def test_quota_message_is_the_quota_part() -> None:
    assert _create_error(403, QUOTA_BODY) == (
        "exceeded quota: one-pod, requested: pods=1, used: pods=1, limited: pods=1"
    )


def test_terminating_namespace_says_so() -> None:
    message = _create_error(403, TERMINATING_BODY)
    assert message.startswith('Kubernetes namespace "hodei-workers" is being deleted')
    assert "rbac.yaml" not in message


def test_missing_service_account_is_named_with_how_to_create_it() -> None:
    message = _create_error(403, ACCOUNT_BODY)
    assert message.startswith(
        'the worker ServiceAccount "hodei-worker" does not exist in namespace "hodei-workers"'
    )
    assert "kubectl create serviceaccount hodei-worker -n hodei-workers" in message
    assert "HODEI_K8S_SERVICE_ACCOUNT" in message


def test_rbac_denial_keeps_its_advice() -> None:
    assert "Grant it by applying deploy/kubernetes/rbac.yaml" in _create_error(403, RBAC_BODY)


def test_invalid_carries_the_field_causes() -> None:
    body = dict(INVALID_BODY, message='Pod "hodei-worker-w-1" is invalid')
    message = _create_error(422, body)
    assert message == (
        'Kubernetes refused "create pods" in namespace "hodei-workers" as invalid: HTTP 422: '
        'Pod "hodei-worker-w-1" is invalid (fields: spec.containers[0].image: Required value)'
    )
    exc = api_error(
        status=422, body=body, verb="create", resource="pods", namespace="hodei-workers"
    )
    assert not exc.retryable and exc.cause is Cause.INVALID
