"""The store's pod lifecycle and kubelet-facing API, with a recording fake kubelet."""

from __future__ import annotations

from typing import Any

import pytest

from kube_emulator import admission
from kube_emulator.errors import ApiError
from kube_emulator.logs import LogBuffer, render
from kube_emulator.resources import by_plural
from kube_emulator.seed import seed
from kube_emulator.store import Store
from tests.fixtures.waiting import eventually

PODS = by_plural("pods")
NAMESPACES = by_plural("namespaces")


class RecordingKubelet:
    """Implements the Kubelet protocol; remembers deletions it was asked to carry out."""

    def __init__(self) -> None:
        self.deleting: list[dict[str, Any]] = []

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def on_pod_deleting(self, pod: dict[str, Any]) -> None:
        self.deleting.append(pod)


def make_pod(store: Store, name: str, namespace: str = "default") -> dict[str, Any]:
    pod = {"metadata": {"name": name}, "spec": {"containers": [{"name": "c", "image": "i"}]}}
    admission.prepare_create("pods", pod)
    assert PODS is not None
    return store.create(PODS, namespace, pod)


@pytest.fixture
def store() -> Store:
    store = Store()
    seed(store)
    return store


async def test_subscription_starts_with_existing_pods_then_changes(store: Store) -> None:
    make_pod(store, "before")
    queue = store.subscribe_pods()
    make_pod(store, "after")
    store.bind_pod("default", "after", "node-1")
    events = [queue.get_nowait() for _ in range(3)]
    assert [(e.type, e.pod["metadata"]["name"]) for e in events] == [
        ("ADDED", "before"),
        ("ADDED", "after"),
        ("MODIFIED", "after"),
    ]
    assert events[2].pod["spec"]["nodeName"] == "node-1"
    events[2].pod["spec"]["nodeName"] = "mutated"  # subscribers own their copies
    assert store.get_pod("default", "after")["spec"]["nodeName"] == "node-1"  # type: ignore[index]
    store.unsubscribe_pods(queue)


async def test_status_update_replaces_status_and_bumps_version(store: Store) -> None:
    pod = make_pod(store, "s")
    updated = store.update_pod_status("default", "s", {"phase": "Running"})
    assert updated["status"] == {"phase": "Running"}
    assert int(updated["metadata"]["resourceVersion"]) > int(pod["metadata"]["resourceVersion"])
    with pytest.raises(ApiError) as wrong_uid:
        store.update_pod_status("default", "s", {}, uid="other")
    assert wrong_uid.value.code == 404


async def test_graceful_delete_waits_for_the_kubelet(store: Store) -> None:
    kubelet = RecordingKubelet()
    store.kubelet = kubelet
    make_pod(store, "g")
    store.bind_pod("default", "g", "node-1")
    obj, removed = store.delete_pod("default", "g", None)
    assert not removed
    assert obj["metadata"]["deletionGracePeriodSeconds"] == 30
    assert obj["metadata"]["deletionTimestamp"]
    assert [p["metadata"]["name"] for p in kubelet.deleting] == ["g"]
    assert store.get_pod("default", "g") is not None
    queue = store.subscribe_pods()
    queue.get_nowait()  # the synthetic ADDED
    store.finalize_pod_deletion("default", "g", uid=obj["metadata"]["uid"])
    assert store.get_pod("default", "g") is None
    assert queue.get_nowait().type == "DELETED"


@pytest.mark.parametrize("case", ["unbound", "grace0", "terminal", "no-kubelet"])
async def test_immediate_deletes(store: Store, case: str) -> None:
    kubelet = RecordingKubelet()
    store.kubelet = None if case == "no-kubelet" else kubelet
    make_pod(store, "i")
    if case != "unbound":
        store.bind_pod("default", "i", "node-1")
    if case == "terminal":
        store.update_pod_status("default", "i", {"phase": "Succeeded"})
    _, removed = store.delete_pod("default", "i", 0 if case == "grace0" else None)
    assert removed
    assert store.get_pod("default", "i") is None
    expected = [] if case in ("unbound", "no-kubelet") else ["i"]
    assert [p["metadata"]["name"] for p in kubelet.deleting] == expected


async def test_namespace_deletion_waits_for_terminating_pods(store: Store) -> None:
    store.kubelet = RecordingKubelet()
    store.namespace_purge_delay = 0
    namespace = {"metadata": {"name": "team"}}
    admission.prepare_create("namespaces", namespace)
    assert NAMESPACES is not None
    store.create(NAMESPACES, None, namespace)
    make_pod(store, "worker", "team")
    pod = store.bind_pod("team", "worker", "node-1")
    store.delete_namespace("team")
    # The purge runs on a timer (here due at once): its effect shows when it has run.
    await eventually(lambda: store.get_object("serviceaccounts", "team", "default") is None)
    assert store.get(NAMESPACES, None, "team") is not None  # a pod is still terminating
    store.finalize_pod_deletion("team", "worker", uid=pod["metadata"]["uid"])
    assert store.get(NAMESPACES, None, "team") is None


async def test_every_namespace_gets_a_default_serviceaccount(store: Store) -> None:
    assert store.get_object("serviceaccounts", "kube-system", "default") is not None


async def test_log_buffer_lines_tail_and_timestamps() -> None:
    buffer = LogBuffer()
    buffer.append(b"one\ntw", now=1_700_000_000.0)
    buffer.append(b"o\nthree", now=1_700_000_001.5)
    assert render(buffer.snapshot(include_partial=False)) == b"one\ntwo\n"
    assert render(buffer.snapshot(include_partial=True), tail_lines=2) == b"two\nthree"
    stamped = render(buffer.snapshot(include_partial=False), timestamps=True)
    assert stamped.splitlines()[0] == b"2023-11-14T22:13:20.000000000Z one"
    assert render(buffer.snapshot(include_partial=False), since_time=1_700_000_000.5) == b""


async def test_append_and_follow_end_on_termination(store: Store) -> None:
    make_pod(store, "l")
    buffer = store.ensure_log_buffer("default", "l", "c")
    changed = buffer.changed()
    store.append_pod_log("default", "l", "c", b"hello\n")
    assert changed.is_set()
    assert not store.container_done("default", "l", "c")
    store.update_pod_status(
        "default", "l", {"containerStatuses": [{"name": "c", "state": {"terminated": {}}}]}
    )
    assert store.container_done("default", "l", "c")
