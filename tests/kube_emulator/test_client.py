"""The emulator driven by the real kubernetes_asyncio client over HTTPS."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from kubernetes_asyncio import client, watch
from kubernetes_asyncio.client.exceptions import ApiException

from kube_emulator.testing import RunningEmulator


def pod(name: str, labels: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {"containers": [{"name": "main", "image": "busybox"}], **spec},
    }


async def test_create_get_and_server_set_metadata(api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    created = await core.create_namespaced_pod(namespace, pod("p1"))
    assert created.metadata.uid
    assert created.metadata.creation_timestamp is not None
    assert int(created.metadata.resource_version) > 0
    assert created.status.phase == "Pending"
    fetched = await core.read_namespaced_pod("p1", namespace)
    assert fetched.metadata.uid == created.metadata.uid
    assert fetched.spec.restart_policy == "Always"  # defaulted like the apiserver


async def test_resource_versions_increase_globally(api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    first = await core.create_namespaced_config_map(namespace, {"metadata": {"name": "a"}})
    second = await core.create_namespaced_secret(namespace, {"metadata": {"name": "b"}})
    assert int(second.metadata.resource_version) > int(first.metadata.resource_version)


async def test_generate_name(api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    body = {"metadata": {"generateName": "gen-"}, "data": {"k": "v"}}
    one = await core.create_namespaced_config_map(namespace, body)
    two = await core.create_namespaced_config_map(namespace, body)
    assert one.metadata.name.startswith("gen-") and len(one.metadata.name) == len("gen-") + 5
    assert one.metadata.name != two.metadata.name


async def test_errors_are_api_exceptions_with_codes(api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    with pytest.raises(ApiException) as missing:
        await core.read_namespaced_pod("nope", namespace)
    assert missing.value.status == 404
    await core.create_namespaced_pod(namespace, pod("dup"))
    with pytest.raises(ApiException) as duplicate:
        await core.create_namespaced_pod(namespace, pod("dup"))
    assert duplicate.value.status == 409
    with pytest.raises(ApiException) as no_ns:
        await core.create_namespaced_pod("no-such-namespace", pod("x"))
    assert no_ns.value.status == 404
    body = str(no_ns.value.body)
    assert 'namespaces \\"no-such-namespace\\" not found' in body or (
        'namespaces "no-such-namespace" not found' in body
    )


async def test_list_with_label_and_field_selectors(api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    for name, labels in [("a", {"app": "web", "tier": "fe"}), ("b", {"app": "web"}), ("c", {})]:
        await core.create_namespaced_pod(namespace, pod(name, labels))
    await core.patch_namespaced_pod_status("b", namespace, {"status": {"phase": "Running"}})

    async def names(**kwargs: Any) -> list[str]:
        result = await core.list_namespaced_pod(namespace, **kwargs)
        return [item.metadata.name for item in result.items]

    assert await names(label_selector="app=web") == ["a", "b"]
    assert await names(label_selector="app=web,tier!=fe") == ["b"]
    assert await names(label_selector="!app") == ["c"]
    assert await names(label_selector="tier in (fe,be)") == ["a"]
    assert await names(field_selector="status.phase=Running") == ["b"]
    assert await names(field_selector="metadata.name!=a,status.phase=Pending") == ["c"]
    assert await names(field_selector="spec.nodeName=") == ["a", "b", "c"]
    with pytest.raises(ApiException) as bad:
        await names(field_selector="spec.unknown=x")
    assert bad.value.status == 400


async def test_all_namespaces_list_filters_by_namespace_field(
    api: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(api)
    await core.create_namespaced_config_map(namespace, {"metadata": {"name": "here"}})
    result = await core.list_config_map_for_all_namespaces(
        field_selector=f"metadata.namespace={namespace}"
    )
    assert [item.metadata.name for item in result.items] == ["here"]


async def test_limit_and_continue(api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    for index in range(7):
        await core.create_namespaced_config_map(namespace, {"metadata": {"name": f"cm-{index}"}})
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        page = await core.list_namespaced_config_map(namespace, limit=3, _continue=token)
        pages += 1
        seen += [item.metadata.name for item in page.items]
        token = page.metadata._continue
        if not token:
            break
        assert page.metadata.remaining_item_count == 7 - len(seen)
    assert pages == 3
    assert seen == [f"cm-{index}" for index in range(7)]


async def test_update_with_stale_resource_version_conflicts(
    api: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(api)
    created = await core.create_namespaced_config_map(
        namespace, {"metadata": {"name": "cfg"}, "data": {"v": "1"}}
    )
    created.data = {"v": "2"}
    updated = await core.replace_namespaced_config_map("cfg", namespace, created)
    assert updated.data == {"v": "2"}
    assert updated.metadata.resource_version != created.metadata.resource_version
    created.data = {"v": "3"}  # still carries the old resourceVersion
    with pytest.raises(ApiException) as conflict:
        await core.replace_namespaced_config_map("cfg", namespace, created)
    assert conflict.value.status == 409


async def test_patch_types(api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    await core.create_namespaced_pod(namespace, pod("pp", {"a": "1", "b": "2"}))
    merged = await core.patch_namespaced_pod(
        "pp",
        namespace,
        {"metadata": {"labels": {"a": None, "c": "3"}}},
        _content_type="application/merge-patch+json",
    )
    assert merged.metadata.labels == {"b": "2", "c": "3"}
    strategic = await core.patch_namespaced_pod(
        "pp",
        namespace,
        {"spec": {"containers": [{"name": "main", "image": "busybox:2"}]}},
        _content_type="application/strategic-merge-patch+json",
    )
    assert strategic.spec.containers[0].image == "busybox:2"
    assert strategic.spec.containers[0].termination_message_path == "/dev/termination-log"
    patched = await core.patch_namespaced_pod(
        "pp",
        namespace,
        [{"op": "add", "path": "/metadata/annotations", "value": {"x": "y"}}],
        _content_type="application/json-patch+json",
    )
    assert patched.metadata.annotations == {"x": "y"}


async def test_pod_spec_is_immutable_except_image(api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    await core.create_namespaced_pod(namespace, pod("imm"))
    with pytest.raises(ApiException) as invalid:
        await core.patch_namespaced_pod("imm", namespace, {"spec": {"restartPolicy": "Never"}})
    assert invalid.value.status == 422


async def test_status_subresource_changes_only_status(
    api: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(api)
    await core.create_namespaced_pod(namespace, pod("st", {"a": "1"}))
    current = await core.read_namespaced_pod("st", namespace)
    current.status.phase = "Running"
    current.metadata.labels = {"changed": "yes"}
    written = await core.replace_namespaced_pod_status("st", namespace, current)
    assert written.status.phase == "Running"
    assert written.metadata.labels == {"a": "1"}
    # ...and the main resource ignores status.
    written.status.phase = "Failed"
    again = await core.replace_namespaced_pod("st", namespace, written)
    assert again.status.phase == "Running"


async def test_delete_without_kubelet_is_immediate(api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    await core.create_namespaced_pod(namespace, pod("gone"))
    await core.delete_namespaced_pod("gone", namespace)
    with pytest.raises(ApiException) as missing:
        await core.read_namespaced_pod("gone", namespace)
    assert missing.value.status == 404


async def collect(stream: Any, count: int) -> list[tuple[str, Any]]:
    events = []
    async for event in stream:
        events.append((event["type"], event["object"]))
        if len(events) == count:
            break
    return events


async def test_watch_starts_with_synthetic_added_events(
    api: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(api)
    await core.create_namespaced_pod(namespace, pod("w1"))
    w = watch.Watch()
    async with w.stream(core.list_namespaced_pod, namespace, timeout_seconds=5) as stream:
        first = await collect(stream, 1)
        await core.create_namespaced_pod(namespace, pod("w2"))
        second = await collect(stream, 1)
    assert [(t, o.metadata.name) for t, o in first + second] == [("ADDED", "w1"), ("ADDED", "w2")]


async def test_watch_resume_replays_modified_and_deleted(
    api: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(api)
    listed = await core.list_namespaced_pod(namespace)
    await core.create_namespaced_pod(namespace, pod("r1"))
    await core.patch_namespaced_pod("r1", namespace, {"metadata": {"labels": {"x": "1"}}})
    await core.delete_namespaced_pod("r1", namespace)
    w = watch.Watch()
    async with w.stream(
        core.list_namespaced_pod,
        namespace,
        resource_version=listed.metadata.resource_version,
        timeout_seconds=5,
    ) as stream:
        events = await collect(stream, 3)
    assert [t for t, _ in events] == ["ADDED", "MODIFIED", "DELETED"]
    versions = [int(o.metadata.resource_version) for _, o in events]
    assert versions == sorted(versions)


async def test_watch_from_compacted_version_raises_410(
    api: client.ApiClient, namespace: str, emulator: RunningEmulator
) -> None:
    core = client.CoreV1Api(api)
    listed = await core.list_namespaced_pod(namespace)
    await core.create_namespaced_pod(namespace, pod("old"))
    emulator.faults.compact()
    w = watch.Watch()
    with pytest.raises(ApiException) as expired:
        async with w.stream(
            core.list_namespaced_pod,
            namespace,
            resource_version=listed.metadata.resource_version,
            timeout_seconds=5,
        ) as stream:
            await collect(stream, 1)
    assert expired.value.status == 410


async def test_watch_label_selector_and_bookmarks(api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    listed = await core.list_namespaced_pod(namespace)
    await core.create_namespaced_pod(namespace, pod("other"))
    await core.create_namespaced_pod(namespace, pod("mine", {"sel": "yes"}))
    # _preload_content=False: the raw aiohttp response, not the model the annotation names.
    raw: aiohttp.ClientResponse = await core.list_namespaced_pod(  # type: ignore[assignment]
        namespace,
        watch=True,
        label_selector="sel=yes",
        allow_watch_bookmarks=True,
        resource_version=listed.metadata.resource_version,
        timeout_seconds=3,
        _preload_content=False,
    )
    lines: list[bytes] = []
    async with raw:
        while len(lines) < 2:
            line = await raw.content.readline()
            if not line:
                break
            lines.append(line)
    import json

    events = [json.loads(line) for line in lines]
    assert events[0]["type"] == "ADDED" and events[0]["object"]["metadata"]["name"] == "mine"
    assert events[1]["type"] == "BOOKMARK"
    assert set(events[1]["object"]["metadata"]) == {"resourceVersion"}


async def test_watch_ends_at_timeout_seconds(api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    w = watch.Watch()
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with w.stream(core.list_namespaced_pod, namespace, timeout_seconds=1) as stream:
        events = [event async for event in stream]
    assert events == []
    assert loop.time() - started < 5


async def test_namespace_deletion_removes_contents(api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    await core.create_namespaced_pod(namespace, pod("inside"))
    await core.create_namespaced_config_map(namespace, {"metadata": {"name": "inside"}})
    listed = await core.list_namespace(field_selector=f"metadata.name={namespace}")
    await core.delete_namespace(namespace)
    terminating = await core.read_namespace(namespace)  # the namespace controller purges later
    assert terminating.status.phase == "Terminating"
    w = watch.Watch()
    async with w.stream(
        core.list_namespace,
        field_selector=f"metadata.name={namespace}",
        resource_version=listed.metadata.resource_version,
        timeout_seconds=10,
    ) as stream:
        async for event in stream:
            if event["type"] == "DELETED":
                break
    assert event["type"] == "DELETED"
    pods = await core.list_pod_for_all_namespaces(field_selector=f"metadata.namespace={namespace}")
    maps = await core.list_config_map_for_all_namespaces(
        field_selector=f"metadata.namespace={namespace}"
    )
    assert pods.items == [] and maps.items == []


async def test_namespace_label_is_automatic(api: client.ApiClient, namespace: str) -> None:
    ns = await client.CoreV1Api(api).read_namespace(namespace)
    assert ns.metadata.labels["kubernetes.io/metadata.name"] == namespace
    assert ns.status.phase == "Active"


async def test_rbac_objects_and_networkpolicies(api: client.ApiClient, namespace: str) -> None:
    rbac = client.RbacAuthorizationV1Api(api)
    net = client.NetworkingV1Api(api)
    await rbac.create_namespaced_role(
        namespace,
        {
            "metadata": {"name": "r"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}],
        },
    )
    await net.create_namespaced_network_policy(
        namespace,
        {"metadata": {"name": "deny"}, "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}},
    )
    roles = await rbac.list_namespaced_role(namespace)
    policies = await net.list_namespaced_network_policy(namespace)
    assert [r.metadata.name for r in roles.items] == ["r"]
    assert [p.metadata.name for p in policies.items] == ["deny"]
