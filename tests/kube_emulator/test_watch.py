"""The watch hub without a server: bounded history, 410 floor, filtered event types."""

from __future__ import annotations

from typing import Any

import pytest

from kube_emulator.watch import Subscriber, TooOld, WatchEvent, WatchHub, visible_type


def cm(name: str, rv: int, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": "ns",
            "resourceVersion": str(rv),
            "labels": labels or {},
        }
    }


def event(
    rv: int,
    kind: str = "ADDED",
    labels: dict[str, str] | None = None,
    old_labels: dict[str, str] | None = None,
) -> WatchEvent:
    old = cm("x", rv - 1, old_labels) if old_labels is not None else None
    return WatchEvent(rv, kind, "configmaps", "ns", cm("x", rv, labels), old)


def selected(obj: dict[str, Any]) -> bool:
    return bool(obj["metadata"]["labels"].get("app") == "web")


def test_filtered_watchers_see_objects_entering_and_leaving_the_selection() -> None:
    assert visible_type(event(2, "MODIFIED", {"app": "web"}, {}), selected) == "ADDED"
    assert visible_type(event(2, "MODIFIED", {}, {"app": "web"}), selected) == "DELETED"
    assert (
        visible_type(event(2, "MODIFIED", {"app": "web"}, {"app": "web"}), selected) == "MODIFIED"
    )
    assert visible_type(event(2, "MODIFIED", {}, {}), selected) is None
    assert visible_type(event(2, "DELETED", {}), selected) is None


def drain(sub: Subscriber) -> list[int]:
    out = []
    while not sub.queue.empty():
        item = sub.queue.get_nowait()
        assert item is not None
        out.append(item[1].rv)
    return out


async def test_replay_after_a_version_then_live_events() -> None:
    hub = WatchHub(capacity=10)
    for rv in (2, 3, 4):
        hub.publish(event(rv))
    sub = Subscriber("configmaps", "ns", lambda obj: True)
    hub.subscribe(sub, since=2)
    hub.publish(event(5))
    assert drain(sub) == [3, 4, 5]


async def test_other_resources_and_namespaces_are_not_delivered() -> None:
    hub = WatchHub()
    sub = Subscriber("configmaps", "other", lambda obj: True)
    hub.subscribe(sub, since=None)
    hub.publish(event(2))
    hub.publish(WatchEvent(3, "ADDED", "secrets", "other", cm("s", 3)))
    assert drain(sub) == []


async def test_versions_older_than_the_retained_window_are_too_old() -> None:
    hub = WatchHub(capacity=3)
    for rv in range(2, 8):
        hub.publish(event(rv))
    assert hub.floor == 4  # events up to 4 were dropped
    with pytest.raises(TooOld):
        hub.subscribe(Subscriber("configmaps", None, lambda obj: True), since=3)
    sub = Subscriber("configmaps", None, lambda obj: True)
    hub.subscribe(sub, since=4)
    assert drain(sub) == [5, 6, 7]


async def test_compaction_expires_every_earlier_version() -> None:
    hub = WatchHub()
    hub.publish(event(2))
    hub.compact(current_rv=3)
    with pytest.raises(TooOld):
        hub.subscribe(Subscriber("configmaps", None, lambda obj: True), since=2)
    hub.subscribe(Subscriber("configmaps", None, lambda obj: True), since=3)


async def test_close_all_ends_streams() -> None:
    hub = WatchHub()
    sub = Subscriber("configmaps", None, lambda obj: True)
    hub.subscribe(sub, since=None)
    hub.close_all()
    assert sub.queue.get_nowait() is None


def test_event_lines_are_rendered_once_per_type() -> None:
    one = event(2)
    assert one.line() is one.line()
    assert one.line("DELETED").startswith(b'{"type":"DELETED","object":')
    assert one.line().endswith(b"\n")
