"""Defaulting and validation rules, checked against the values the Kubernetes docs give."""

from __future__ import annotations

from typing import Any

import pytest

from kube_emulator import admission
from kube_emulator.errors import ApiError


def pod(**container: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "busybox", **container}]},
    }


def test_pod_defaults() -> None:
    obj = pod()
    admission.prepare_create("pods", obj)
    spec, container = obj["spec"], obj["spec"]["containers"][0]
    assert (spec["restartPolicy"], spec["dnsPolicy"], spec["terminationGracePeriodSeconds"]) == (
        "Always",
        "ClusterFirst",
        30,
    )
    assert spec["serviceAccountName"] == "default"
    assert container["terminationMessagePath"] == "/dev/termination-log"
    assert container["imagePullPolicy"] == "Always"  # no tag means :latest
    assert obj["status"] == {"phase": "Pending", "qosClass": "BestEffort"}


@pytest.mark.parametrize(
    ("image", "policy"),
    [
        ("busybox:1.36", "IfNotPresent"),
        ("busybox:latest", "Always"),
        ("registry:5000/app", "Always"),
        ("registry:5000/app:v1", "IfNotPresent"),
    ],
)
def test_image_pull_policy_default(image: str, policy: str) -> None:
    obj = pod(image=image)
    admission.prepare_create("pods", obj)
    assert obj["spec"]["containers"][0]["imagePullPolicy"] == policy


@pytest.mark.parametrize(
    ("resources", "qos"),
    [
        ({"requests": {"cpu": "100m"}}, "Burstable"),
        ({"limits": {"cpu": "1", "memory": "1Gi"}}, "Guaranteed"),
        (
            {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
            "Guaranteed",
        ),
        ({"requests": {"cpu": "500m"}, "limits": {"cpu": "1", "memory": "1Gi"}}, "Burstable"),
    ],
)
def test_qos_class(resources: dict[str, Any], qos: str) -> None:
    obj = pod(resources=resources)
    admission.prepare_create("pods", obj)
    assert obj["status"]["qosClass"] == qos


def test_requests_default_to_limits_per_resource() -> None:
    obj = pod(resources={"requests": {"memory": "64Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}})
    admission.prepare_create("pods", obj)
    assert obj["spec"]["containers"][0]["resources"]["requests"] == {"memory": "64Mi", "cpu": "1"}


def test_pod_without_image_is_invalid_with_causes() -> None:
    obj = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}]}}
    with pytest.raises(ApiError) as invalid:
        admission.prepare_create("pods", obj)
    assert invalid.value.code == 422
    assert invalid.value.details is not None
    assert invalid.value.details["causes"] == [
        {
            "reason": "FieldValueRequired",
            "message": "Required value",
            "field": "spec.containers[0].image",
        }
    ]


def test_pod_spec_updates_are_limited() -> None:
    old = pod()
    admission.prepare_create("pods", old)
    new = {
        **old,
        "spec": {
            **old["spec"],
            "containers": [{**old["spec"]["containers"][0], "image": "busybox:2"}],
        },
    }
    assert (
        admission.prepare_update("pods", "", old, new)["spec"]["containers"][0]["image"]
        == "busybox:2"
    )
    changed = {**old, "spec": {**old["spec"], "restartPolicy": "Never"}}
    with pytest.raises(ApiError) as forbidden:
        admission.prepare_update("pods", "", old, changed)
    assert forbidden.value.code == 422
    assert "pod updates may not change fields other than" in forbidden.value.message


def test_status_subresource_takes_only_status() -> None:
    old = pod()
    admission.prepare_create("pods", old)
    new = {**old, "metadata": {"name": "p", "labels": {"x": "y"}}, "status": {"phase": "Running"}}
    result = admission.prepare_update("pods", "status", old, new)
    assert result["status"] == {"phase": "Running"}
    assert "labels" not in result["metadata"]


def test_namespace_gets_its_name_label_and_keeps_it() -> None:
    ns: dict[str, Any] = {"metadata": {"name": "team"}}
    admission.prepare_create("namespaces", ns)
    assert ns["metadata"]["labels"] == {"kubernetes.io/metadata.name": "team"}
    update = {"metadata": {"name": "team", "labels": {"other": "1"}}}
    result = admission.prepare_update("namespaces", "", ns, update)
    assert result["metadata"]["labels"] == {"other": "1", "kubernetes.io/metadata.name": "team"}


def test_secret_string_data_is_encoded() -> None:
    secret: dict[str, Any] = {"metadata": {"name": "s"}, "stringData": {"k": "v"}}
    admission.prepare_create("secrets", secret)
    assert secret == {"metadata": {"name": "s"}, "type": "Opaque", "data": {"k": "dg=="}}


def test_role_ref_is_immutable() -> None:
    old = {
        "kind": "RoleBinding",
        "metadata": {"name": "b"},
        "roleRef": {"kind": "Role", "name": "a"},
    }
    new = {**old, "roleRef": {"kind": "Role", "name": "b"}}
    with pytest.raises(ApiError) as invalid:
        admission.prepare_update("rolebindings", "", old, new)
    assert invalid.value.code == 422


@pytest.mark.parametrize(
    "labels",
    [
        {"a": "has space"},
        {"bad key": "v"},
        {"a": "x" * 64},
        {"UPPER.example.com/a": "v"},
        {"a": "-leading"},
    ],
)
def test_invalid_labels(labels: dict[str, str]) -> None:
    with pytest.raises(ApiError) as invalid:
        admission.validate_metadata("ConfigMap", {"metadata": {"name": "c", "labels": labels}})
    assert invalid.value.code == 422


def test_valid_labels_pass() -> None:
    labels = {"app.kubernetes.io/name": "hodei", "hodei.io/job-id": "j-123", "empty": ""}
    admission.validate_metadata("Pod", {"metadata": {"name": "p", "labels": labels}})


@pytest.mark.parametrize("value", ["abc", "1.5.5", "10 Mi"])
def test_unparsable_quantities(value: str) -> None:
    with pytest.raises(ApiError) as bad:
        admission.check_quantities("Pod", pod(resources={"limits": {"memory": value}}))
    assert bad.value.code == 400


def test_valid_quantities() -> None:
    admission.check_quantities(
        "Pod",
        pod(
            resources={
                "limits": {"memory": "512Mi", "cpu": "1.5"},
                "requests": {"cpu": "100m", "memory": "1e3"},
            }
        ),
    )
