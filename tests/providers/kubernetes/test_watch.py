"""The shared watch: cache merging, relist diffs, and the restart loop (with a fake source)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from hodei.providers.kubernetes.errors import KubernetesApiError
from hodei.providers.kubernetes.watch import PodCache, PodEvent, PodWatcher, WatchTiming


def pod(name: str, rv: str, phase: str = "Pending") -> dict[str, Any]:
    return {"metadata": {"name": name, "resourceVersion": rv}, "status": {"phase": phase}}


def kinds(events: list[PodEvent]) -> list[tuple[str, str, bool]]:
    return [(e.type, e.name, e.synthetic) for e in events]


def test_apply_adds_modifies_and_ignores_repeats() -> None:
    cache = PodCache()
    first = cache.apply("ADDED", pod("a", "1"))
    assert first is not None and first.type == "ADDED"
    assert cache.apply("ADDED", pod("a", "1")) is None  # same version: a repeat
    second = cache.apply("MODIFIED", pod("a", "2", "Running"))
    assert second is not None and second.type == "MODIFIED"
    assert cache.get("a") == pod("a", "2", "Running")


def test_delete_of_unknown_pod_is_ignored() -> None:
    cache = PodCache()
    assert cache.apply("DELETED", pod("ghost", "3")) is None
    cache.apply("ADDED", pod("a", "1"))
    gone = cache.apply("DELETED", pod("a", "2"))
    assert gone is not None and gone.type == "DELETED"
    assert cache.get("a") is None
    assert cache.apply("DELETED", pod("a", "2")) is None  # delivered twice: once only


def test_added_after_seed_from_create_is_a_repeat() -> None:
    cache = PodCache()
    assert cache.add_if_absent(pod("a", "5"))
    assert not cache.add_if_absent(pod("a", "5"))
    assert cache.apply("ADDED", pod("a", "5")) is None
    event = cache.apply("MODIFIED", pod("a", "6"))
    assert event is not None and event.type == "MODIFIED"


def test_relist_emits_exactly_the_missed_transitions() -> None:
    cache = PodCache()
    for name in ("same", "changed", "vanished"):
        cache.apply("ADDED", pod(name, "1"))
    events = cache.replace([pod("same", "1"), pod("changed", "4", "Running"), pod("new", "5")])
    assert sorted(kinds(events)) == [
        ("ADDED", "new", True),
        ("DELETED", "vanished", True),
        ("MODIFIED", "changed", True),
    ]
    assert sorted(p["metadata"]["name"] for p in cache.pods()) == ["changed", "new", "same"]
    # The same list again changes nothing: no duplicates.
    assert cache.replace([pod("same", "1"), pod("changed", "4", "Running"), pod("new", "5")]) == []


class FakeStream:
    def __init__(self, script: list[Any]) -> None:
        self._script = script
        self.closed = False

    async def next(self) -> dict[str, Any] | None:
        if not self._script:
            await asyncio.Event().wait()  # silent forever: a stalled stream
        item = self._script.pop(0)
        if isinstance(item, Exception):
            raise item
        return item  # type: ignore[no-any-return]

    def close(self) -> None:
        self.closed = True


class FakeSource:
    """Lists and watch streams scripted in advance; records what was asked."""

    def __init__(self, lists: list[dict[str, Any]], streams: list[list[Any]]) -> None:
        self.lists = lists
        self.streams = streams
        self.list_calls = 0
        self.watch_versions: list[str] = []
        self.done = asyncio.Event()

    async def list_pods(
        self, *, label_selector: str, limit: int | None = None, continue_token: str | None = None
    ) -> dict[str, Any]:
        self.list_calls += 1
        return self.lists.pop(0)

    async def open_watch(
        self, *, label_selector: str, resource_version: str, timeout_seconds: int
    ) -> FakeStream:
        self.watch_versions.append(resource_version)
        if not self.streams:
            self.done.set()
            await asyncio.Event().wait()
        return FakeStream(self.streams.pop(0))


def pod_list(rv: str, *pods: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"resourceVersion": rv}, "items": list(pods)}


def gone() -> KubernetesApiError:
    return KubernetesApiError("too old", status=410, api_reason="Expired")


async def run_until_done(watcher: PodWatcher, source: FakeSource) -> None:
    version = await watcher.relist()
    task = asyncio.create_task(watcher.run(version))
    await asyncio.wait_for(source.done.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_watch_resumes_from_last_version_and_relists_on_410() -> None:
    source = FakeSource(
        lists=[
            pod_list("10", pod("a", "9")),
            # after 410: "a" finished while we were away and "c" appeared
            pod_list("30", pod("a", "25", "Succeeded"), pod("c", "28")),
        ],
        streams=[
            [{"type": "MODIFIED", "object": pod("a", "11", "Running")}, None],  # server closes
            [{"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "15"}}}, gone()],
            [{"type": "MODIFIED", "object": pod("c", "31", "Running")}, None],
        ],
    )
    events: list[PodEvent] = []
    restarts: list[str] = []
    watcher = PodWatcher(
        source, selector="s", on_event=events.append, on_restart=restarts.append, sleep=_no_sleep
    )
    await run_until_done(watcher, source)
    assert source.watch_versions == ["10", "11", "30", "31"]
    assert restarts == ["closed", "expired", "closed"]
    assert kinds(events) == [
        ("ADDED", "a", True),
        ("MODIFIED", "a", False),
        ("MODIFIED", "a", True),
        ("ADDED", "c", True),
        ("MODIFIED", "c", False),
    ]
    assert events[2].pod["status"]["phase"] == "Succeeded"


async def test_stalled_stream_is_restarted_from_the_same_version() -> None:
    source = FakeSource(
        lists=[pod_list("5")],
        streams=[[{"type": "ADDED", "object": pod("a", "6")}]],  # then silence
    )
    restarts: list[str] = []
    watcher = PodWatcher(
        source,
        selector="s",
        on_event=lambda e: None,
        on_restart=restarts.append,
        timing=WatchTiming(inactivity=0.05),
        sleep=_no_sleep,
    )
    await run_until_done(watcher, source)
    assert restarts == ["stalled"]
    assert source.watch_versions == ["5", "6"]


async def test_errors_back_off_and_are_remembered() -> None:
    refused = KubernetesApiError("refused", status=0)
    source = FakeSource(lists=[pod_list("5")], streams=[[refused], [refused]])
    delays: list[float] = []

    async def sleep(seconds: float) -> None:
        delays.append(seconds)

    watcher = PodWatcher(
        source, selector="s", on_event=lambda e: None, sleep=sleep, rand=lambda: 0.0
    )
    await run_until_done(watcher, source)
    assert watcher.last_error is refused
    assert delays == [0.25, 0.5]  # equal jitter with rand 0: half of 0.5, then half of 1.0


async def _no_sleep(seconds: float) -> None:
    return None


async def test_an_unexpected_error_restarts_rather_than_ends_the_watch() -> None:
    source = FakeSource(
        lists=[pod_list("5")],
        streams=[[ValueError("boom")], [{"type": "ADDED", "object": pod("a", "6")}, None]],
    )
    events: list[PodEvent] = []
    restarts: list[str] = []
    watcher = PodWatcher(
        source, selector="s", on_event=events.append, on_restart=restarts.append, sleep=_no_sleep
    )
    await run_until_done(watcher, source)
    assert restarts == ["error", "closed"]
    assert kinds(events) == [("ADDED", "a", False)]
