"""Wire-level conformance: status codes, Status bodies, discovery and watch shapes.

Expected values come from the Kubernetes API documentation: the API conventions
(``kind: Status`` with ``status``, ``message``, ``reason``, ``details``, ``code``; reasons
NotFound, AlreadyExists, Conflict, Invalid, Forbidden, Expired, UnsupportedMediaType,
Unauthorized, TooManyRequests), the API concepts page (watch events ``{"type",
"object"}``, 410 Gone/Expired for too old resource versions, ``limit``/``continue``), and
the authorization docs (the Forbidden message names user, verb, resource, group, namespace).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from kube_emulator.testing import RunningEmulator

from .conftest import Raw, kubeconfig_token

JSON = {"Content-Type": "application/json"}


def body(raw_body: bytes) -> Any:
    return json.loads(raw_body)


def pod(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
    }


def assert_status(payload: Any, code: int, reason: str, message: str | None = None) -> None:
    assert payload["kind"] == "Status"
    assert payload["apiVersion"] == "v1"
    assert payload["status"] == "Failure"
    assert payload["code"] == code
    assert payload["reason"] == reason
    assert payload["metadata"] == {}
    if message is not None:
        assert payload["message"] == message


async def test_not_found_status(raw: Raw, namespace: str) -> None:
    code, _, data = await raw.request("GET", f"/api/v1/namespaces/{namespace}/pods/missing")
    assert code == 404
    payload = body(data)
    assert_status(payload, 404, "NotFound", 'pods "missing" not found')
    assert payload["details"] == {"name": "missing", "kind": "pods"}


async def test_not_found_in_named_group(raw: Raw, namespace: str) -> None:
    path = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/roles/nope"
    code, _, data = await raw.request("GET", path)
    payload = body(data)
    assert code == 404
    assert_status(payload, 404, "NotFound", 'roles.rbac.authorization.k8s.io "nope" not found')
    assert payload["details"] == {
        "name": "nope",
        "group": "rbac.authorization.k8s.io",
        "kind": "roles",
    }


async def test_already_exists_status(raw: Raw, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/pods"
    assert (await raw.request("POST", path, json=pod("twice")))[0] == 201
    code, _, data = await raw.request("POST", path, json=pod("twice"))
    assert code == 409
    assert_status(body(data), 409, "AlreadyExists", 'pods "twice" already exists')


async def test_conflict_status(raw: Raw, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    _, _, data = await raw.request("POST", path, json={"metadata": {"name": "cm"}})
    created = body(data)
    created["data"] = {"a": "1"}
    assert (await raw.request("PUT", f"{path}/cm", json=created))[0] == 200
    code, _, data = await raw.request("PUT", f"{path}/cm", json=created)  # stale version
    assert code == 409
    payload = body(data)
    assert_status(payload, 409, "Conflict")
    assert payload["message"].startswith('Operation cannot be fulfilled on configmaps "cm": ')
    assert "the object has been modified" in payload["message"]


async def test_invalid_pod_without_containers(raw: Raw, namespace: str) -> None:
    bad = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "empty"}, "spec": {}}
    code, _, data = await raw.request("POST", f"/api/v1/namespaces/{namespace}/pods", json=bad)
    assert code == 422
    payload = body(data)
    assert_status(payload, 422, "Invalid")
    assert payload["message"].startswith('Pod "empty" is invalid: spec.containers: Required value')
    assert payload["details"]["name"] == "empty"
    assert payload["details"]["kind"] == "Pod"
    assert {
        "reason": "FieldValueRequired",
        "message": "Required value",
        "field": "spec.containers",
    } in payload["details"]["causes"]


async def test_create_in_missing_namespace(raw: Raw) -> None:
    code, _, data = await raw.request(
        "POST", "/api/v1/namespaces/ghost/configmaps", json={"metadata": {"name": "x"}}
    )
    assert code == 404
    assert_status(body(data), 404, "NotFound", 'namespaces "ghost" not found')


async def test_unsupported_media_type(raw: Raw, namespace: str) -> None:
    code, _, data = await raw.request(
        "POST",
        f"/api/v1/namespaces/{namespace}/configmaps",
        data=b"x=1",
        headers={"Content-Type": "text/plain"},
    )
    assert code == 415
    assert_status(body(data), 415, "UnsupportedMediaType")


async def test_patch_with_unsupported_patch_type(raw: Raw, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    await raw.request("POST", path, json={"metadata": {"name": "p"}})
    code, _, data = await raw.request("PATCH", f"{path}/p", data=b"{}", headers=JSON)
    assert code == 415
    assert_status(body(data), 415, "UnsupportedMediaType")


async def test_unauthorized_token(raw: Raw) -> None:
    code, _, data = await raw.request("GET", "/api/v1/namespaces", token="not-a-token")
    assert code == 401
    assert_status(body(data), 401, "Unauthorized")


async def test_forbidden_message_shape(raw: Raw, emulator: RunningEmulator, namespace: str) -> None:
    token = kubeconfig_token(emulator.serviceaccount_kubeconfig("team", "bot"))
    code, _, data = await raw.request(
        "POST", f"/api/v1/namespaces/{namespace}/pods", json=pod("p"), token=token
    )
    assert code == 403
    payload = body(data)
    assert_status(
        payload,
        403,
        "Forbidden",
        f'pods is forbidden: User "system:serviceaccount:team:bot" cannot create resource '
        f'"pods" in API group "" in the namespace "{namespace}"',
    )
    assert payload["details"] == {"kind": "pods"}
    code, _, data = await raw.request(
        "GET", f"/api/v1/namespaces/{namespace}/pods/p/log", token=token
    )
    assert body(data)["message"] == (
        f'pods "p" is forbidden: User "system:serviceaccount:team:bot" cannot get resource '
        f'"pods/log" in API group "" in the namespace "{namespace}"'
    )
    code, _, data = await raw.request("GET", "/api/v1/nodes", token=token)
    assert body(data)["message"] == (
        'nodes is forbidden: User "system:serviceaccount:team:bot" cannot list resource '
        '"nodes" in API group "" at the cluster scope'
    )


async def test_impersonation(raw: Raw, emulator: RunningEmulator, namespace: str) -> None:
    as_sa = {"Impersonate-User": "system:serviceaccount:team:bot"}
    code, _, data = await raw.request("GET", f"/api/v1/namespaces/{namespace}/pods", headers=as_sa)
    assert code == 403
    assert 'User "system:serviceaccount:team:bot" cannot list' in body(data)["message"]
    token = kubeconfig_token(emulator.serviceaccount_kubeconfig("team", "bot"))
    code, _, data = await raw.request(
        "GET", "/api/v1/namespaces", token=token, headers={"Impersonate-User": "admin"}
    )
    assert code == 403
    assert body(data)["message"] == (
        'users "admin" is forbidden: User "system:serviceaccount:team:bot" cannot impersonate '
        'resource "users" in API group "" at the cluster scope'
    )


async def test_delete_returns_success_status_or_object(raw: Raw, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    _, _, data = await raw.request("POST", path, json={"metadata": {"name": "d"}})
    uid = body(data)["metadata"]["uid"]
    code, _, data = await raw.request("DELETE", f"{path}/d")
    assert code == 200
    assert body(data) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": {"name": "d", "kind": "configmaps", "uid": uid},
    }
    await raw.request("POST", f"/api/v1/namespaces/{namespace}/pods", json=pod("dp"))
    code, _, data = await raw.request("DELETE", f"/api/v1/namespaces/{namespace}/pods/dp")
    assert code == 200
    assert body(data)["kind"] == "Pod"


async def test_list_shape_and_paging(raw: Raw, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    for index in range(3):
        await raw.request("POST", path, json={"metadata": {"name": f"c{index}"}})
    code, _, data = await raw.request("GET", f"{path}?limit=2")
    page = body(data)
    assert code == 200
    assert (page["kind"], page["apiVersion"]) == ("ConfigMapList", "v1")
    assert page["metadata"]["resourceVersion"].isdigit()
    assert page["metadata"]["remainingItemCount"] == 1
    assert [item["metadata"]["name"] for item in page["items"]] == ["c0", "c1"]
    _, _, data = await raw.request("GET", f"{path}?limit=2&continue={page['metadata']['continue']}")
    rest = body(data)
    assert [item["metadata"]["name"] for item in rest["items"]] == ["c2"]
    assert "continue" not in rest["metadata"]


async def test_continue_token_expires_after_compaction(
    raw: Raw, emulator: RunningEmulator, namespace: str
) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    for index in range(3):
        await raw.request("POST", path, json={"metadata": {"name": f"e{index}"}})
    _, _, data = await raw.request("GET", f"{path}?limit=1")
    token = body(data)["metadata"]["continue"]
    emulator.faults.compact()
    code, _, data = await raw.request("GET", f"{path}?limit=1&continue={token}")
    assert code == 410
    assert_status(body(data), 410, "Expired")


async def read_events(raw: Raw, path: str, count: int) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    headers = {"Authorization": f"Bearer {raw.token}"}
    async with raw.session.get(raw.url + path, headers=headers) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("application/json")
        while len(events) < count:
            line = await resp.content.readline()
            if not line:
                break
            events.append(json.loads(line))
    return events


async def test_watch_event_shapes(raw: Raw, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    _, _, data = await raw.request("GET", path)
    rv = body(data)["metadata"]["resourceVersion"]
    await raw.request("POST", path, json={"metadata": {"name": "w"}})
    await raw.request(
        "PATCH",
        f"{path}/w",
        json={"data": {"a": "b"}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    await raw.request("DELETE", f"{path}/w")
    events = await read_events(raw, f"{path}?watch=true&resourceVersion={rv}&timeoutSeconds=5", 3)
    assert [e["type"] for e in events] == ["ADDED", "MODIFIED", "DELETED"]
    for event in events:
        assert set(event) == {"type", "object"}
        assert (event["object"]["kind"], event["object"]["apiVersion"]) == ("ConfigMap", "v1")
    assert events[1]["object"]["data"] == {"a": "b"}


async def test_watch_too_old_is_an_error_event_with_410(
    raw: Raw, emulator: RunningEmulator, namespace: str
) -> None:
    path = f"/api/v1/namespaces/{namespace}/pods"
    _, _, data = await raw.request("GET", path)
    rv = body(data)["metadata"]["resourceVersion"]
    emulator.faults.compact()
    events = await read_events(raw, f"{path}?watch=1&resourceVersion={rv}", 2)
    assert len(events) == 1
    assert events[0]["type"] == "ERROR"
    assert_status(events[0]["object"], 410, "Expired")
    assert events[0]["object"]["message"].startswith(f"too old resource version: {rv}")


async def test_bookmarks_carry_only_the_resource_version(raw: Raw, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/pods?watch=true&allowWatchBookmarks=true"
    _, _, data = await raw.request("GET", f"/api/v1/namespaces/{namespace}/pods")
    rv = body(data)["metadata"]["resourceVersion"]
    events = await read_events(raw, f"{path}&resourceVersion={rv}&timeoutSeconds=3", 1)
    assert events[0]["type"] == "BOOKMARK"
    assert events[0]["object"]["kind"] == "Pod"
    assert list(events[0]["object"]["metadata"]) == ["resourceVersion"]


@pytest.mark.parametrize("path", ["/api", "/api/", "/apis", "/apis/", "/version", "/version/"])
async def test_discovery_roots_with_and_without_trailing_slash(raw: Raw, path: str) -> None:
    code, _, data = await raw.request("GET", path)
    assert code == 200
    payload = body(data)
    if path.startswith("/version"):
        assert payload["major"] == "1" and payload["minor"] == "33"
    elif path.startswith("/apis"):
        assert payload["kind"] == "APIGroupList"
        names = {group["name"] for group in payload["groups"]}
        assert {
            "apps",
            "rbac.authorization.k8s.io",
            "networking.k8s.io",
            "authorization.k8s.io",
        } <= names
    else:
        assert payload["kind"] == "APIVersions" and payload["versions"] == ["v1"]


async def test_core_resource_discovery(raw: Raw) -> None:
    _, _, data = await raw.request("GET", "/api/v1")
    payload = body(data)
    assert (payload["kind"], payload["groupVersion"]) == ("APIResourceList", "v1")
    resources = {entry["name"]: entry for entry in payload["resources"]}
    assert resources["pods"]["namespaced"] is True
    assert resources["pods"]["kind"] == "Pod"
    assert resources["pods"]["shortNames"] == ["po"]
    assert set(resources["pods"]["verbs"]) >= {
        "create",
        "delete",
        "get",
        "list",
        "patch",
        "update",
        "watch",
    }
    assert resources["pods/log"]["verbs"] == ["get"]
    assert set(resources["pods/status"]["verbs"]) == {"get", "patch", "update"}
    assert resources["namespaces"]["namespaced"] is False
    _, _, data = await raw.request("GET", "/apis/rbac.authorization.k8s.io/v1")
    rbac = {entry["name"]: entry for entry in body(data)["resources"]}
    assert rbac["clusterroles"]["namespaced"] is False and rbac["roles"]["namespaced"] is True


async def test_unknown_resource_path(raw: Raw) -> None:
    code, _, data = await raw.request("GET", "/api/v1/namespaces/default/widgets")
    assert code == 404
    assert_status(body(data), 404, "NotFound", "the server could not find the requested resource")


async def test_selfsubjectaccessreview(raw: Raw, emulator: RunningEmulator) -> None:
    token = kubeconfig_token(emulator.serviceaccount_kubeconfig("team", "bot"))
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {
            "resourceAttributes": {
                "verb": "create",
                "resource": "selfsubjectaccessreviews",
                "group": "authorization.k8s.io",
            }
        },
    }
    path = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
    code, _, data = await raw.request("POST", path, json=review, token=token)
    assert code == 201
    assert body(data)["status"]["allowed"] is True
    review["spec"] = {
        "resourceAttributes": {"verb": "get", "resource": "secrets", "namespace": "team"}
    }
    _, _, data = await raw.request("POST", path, json=review, token=token)
    assert body(data)["status"]["allowed"] is False


async def test_subjectaccessreview_for_another_user(raw: Raw) -> None:
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": "someone",
            "groups": ["system:masters"],
            "resourceAttributes": {"verb": "delete", "resource": "nodes"},
        },
    }
    code, _, data = await raw.request(
        "POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", json=review
    )
    assert code == 201
    assert body(data)["status"]["allowed"] is True


async def test_invalid_label_value_is_422(raw: Raw, namespace: str) -> None:
    bad = {"metadata": {"name": "lbl", "labels": {"team": "a b"}}}
    code, _, data = await raw.request(
        "POST", f"/api/v1/namespaces/{namespace}/configmaps", json=bad
    )
    assert code == 422
    payload = body(data)
    assert_status(payload, 422, "Invalid")
    assert payload["message"].startswith(
        'ConfigMap "lbl" is invalid: metadata.labels: Invalid value: "a b": a valid label must be '
        "an empty string or consist of alphanumeric characters"
    )


async def test_unparsable_quantity_is_400(raw: Raw, namespace: str) -> None:
    bad = pod("q")
    bad["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "abc"}}
    code, _, data = await raw.request("POST", f"/api/v1/namespaces/{namespace}/pods", json=bad)
    assert code == 400
    assert_status(body(data), 400, "BadRequest")
    assert "quantities must match the regular expression" in body(data)["message"]


async def test_field_validation_strict_and_warn(raw: Raw, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    typo = {"metadata": {"name": "fv"}, "dataa": {"a": "b"}}
    code, _, data = await raw.request("POST", f"{path}?fieldValidation=Strict", json=typo)
    assert code == 400
    assert body(data)["message"] == (
        'ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: '
        'unknown field "dataa"'
    )
    code, headers, _ = await raw.request("POST", f"{path}?fieldValidation=Warn", json=typo)
    assert code == 201
    assert headers["Warning"] == '299 - "unknown field \\"dataa\\""'


async def test_pod_log_container_selection(
    raw: Raw, emulator: RunningEmulator, namespace: str
) -> None:
    two = pod("two")
    two["spec"]["containers"].append({"name": "side", "image": "busybox"})
    await raw.request("POST", f"/api/v1/namespaces/{namespace}/pods", json=two)
    emulator.call(emulator.store.append_pod_log, namespace, "two", "side", b"from side\n")
    path = f"/api/v1/namespaces/{namespace}/pods/two/log"
    code, _, data = await raw.request("GET", path)
    assert code == 400
    assert body(data)["message"] == (
        "a container name must be specified for pod two, choose one of: [c side]"
    )
    code, headers, data = await raw.request("GET", f"{path}?container=side")
    assert code == 200 and data == b"from side\n"
    assert headers["Content-Type"].startswith("text/plain")
    code, _, data = await raw.request("GET", f"{path}?container=c")
    assert code == 400
    assert body(data)["message"] == (
        'container "c" in pod "two" is waiting to start: ContainerCreating'
    )
    code, _, data = await raw.request("GET", f"{path}?container=side&previous=true")
    assert code == 400
    assert 'previous terminated container "side" in pod "two" not found' in body(data)["message"]
