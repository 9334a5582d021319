"""An in-memory stand-in for the provider's client (its PodApi), for fast, exact tests of
the provider's own logic. The real client is tested against the emulator."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from hodei.providers.kubernetes.errors import KubernetesApiError


class FakeWatch:
    def __init__(self, queue: asyncio.Queue[dict[str, Any] | None]) -> None:
        self._queue = queue

    async def next(self) -> dict[str, Any] | None:
        return await self._queue.get()

    def close(self) -> None:
        return None


class FakePodApi:
    """Pods in a dict; every change is a watch event; calls are counted by verb."""

    namespace = "hodei-workers"
    server = "https://fake"

    def __init__(self) -> None:
        self.pods: dict[str, dict[str, Any]] = {}
        self.version = 0
        self.calls: dict[str, int] = {}
        self.logs: dict[str, str] = {}
        self.log_gate: asyncio.Event | None = None
        self.graceful = False  # deletes mark the pod terminating instead of removing it
        self.create_errors: list[KubernetesApiError] = []  # raised by the next creates
        self._watchers: list[asyncio.Queue[dict[str, Any] | None]] = []

    def _count(self, verb: str) -> None:
        self.calls[verb] = self.calls.get(verb, 0) + 1

    def _bump(self, pod: dict[str, Any]) -> dict[str, Any]:
        self.version += 1
        pod["metadata"]["resourceVersion"] = str(self.version)
        return pod

    def _notify(self, type_: str, pod: dict[str, Any]) -> None:
        for queue in self._watchers:
            queue.put_nowait({"type": type_, "object": copy.deepcopy(pod)})

    async def create_pod(self, body: dict[str, Any]) -> dict[str, Any]:
        self._count("create")
        if self.create_errors:
            raise self.create_errors.pop(0)
        name = body["metadata"]["name"]
        if name in self.pods:
            raise KubernetesApiError("exists", status=409, api_reason="AlreadyExists")
        pod = self._bump(copy.deepcopy(body))
        pod["status"] = {"phase": "Pending"}
        self.pods[name] = pod
        self._notify("ADDED", pod)
        return copy.deepcopy(pod)

    async def delete_pod(self, name: str, *, grace_period_seconds: int) -> None:
        self._count("delete")
        if self.graceful and name in self.pods:
            self.mark_deleting(name)
            return
        pod = self.pods.pop(name, None)
        if pod is None:
            raise KubernetesApiError("not found", status=404, api_reason="NotFound")
        self._notify("DELETED", self._bump(pod))

    def mark_deleting(self, name: str) -> None:
        """A graceful deletion in progress (by anyone): deletionTimestamp set, pod kept."""
        pod = self._bump(self.pods[name])
        pod["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:30Z"
        self._notify("MODIFIED", pod)

    async def list_pods(self, **kwargs: Any) -> dict[str, Any]:
        self._count("list")
        return {
            "metadata": {"resourceVersion": str(self.version)},
            "items": [copy.deepcopy(p) for p in self.pods.values()],
        }

    async def open_watch(self, **kwargs: Any) -> FakeWatch:
        self._count("watch")
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._watchers.append(queue)
        return FakeWatch(queue)

    async def read_pod_log(self, name: str, *, container: str, tail_lines: int) -> str:
        self._count("log")
        if self.log_gate is not None:
            await self.log_gate.wait()
        return self.logs.get(name, "")

    async def close(self) -> None:
        return None

    def delivered(self) -> bool:
        """Whether every watch event was taken by its watcher (which handles an event as
        soon as it takes it, before awaiting anything else)."""
        return all(queue.empty() for queue in self._watchers)

    def set_status(self, name: str, status: dict[str, Any]) -> None:
        pod = self._bump(self.pods[name])
        pod["status"] = status
        self._notify("MODIFIED", pod)
