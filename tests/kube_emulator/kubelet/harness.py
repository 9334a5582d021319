"""A store plus a started kubelet on the test's loop, and waiting on pod changes.

Drives the kubelet through the same in-process store the API server uses, without HTTP:
fast enough for every lifecycle scenario. Waiting is on the store's pod events, never on
sleeps.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kube_emulator import admission
from kube_emulator.kubelet import Kubelet, Timings
from kube_emulator.kubelet_api import PodEvent
from kube_emulator.resources import by_plural, resource_type
from kube_emulator.seed import seed
from kube_emulator.store import Store

PODS = resource_type("pods")
PYTHON = sys.executable
FAST = Timings(image_back_off=0.1, config_retry=0.1, default_grace=5.0)
Predicate = Callable[[dict[str, Any]], bool]


class Node:
    """The store, the kubelet, and a subscription to watch pods change."""

    def __init__(self, tmp_path: Path, **kubelet: Any) -> None:
        self.store = Store()
        seed(self.store)
        options: dict[str, Any] = {"images": ("python",), "timings": FAST, **kubelet}
        self.kubelet = Kubelet(self.store, workdir=tmp_path, **options)
        self.store.kubelet = self.kubelet
        self.events: asyncio.Queue[PodEvent] = self.store.subscribe_pods()
        self.history: list[PodEvent] = []
        self.log_seen: dict[str, str] = {}

    async def __aenter__(self) -> Node:
        await self.kubelet.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.kubelet.stop()
        self.store.unsubscribe_pods(self.events)

    def create(self, name: str, *containers: dict[str, Any], **spec: Any) -> dict[str, Any]:
        pod: dict[str, Any] = {
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"restartPolicy": "Never", "containers": list(containers), **spec},
        }
        admission.prepare_create("pods", pod)
        return self.store.create(PODS, "default", pod)

    def create_object(self, plural: str, obj: dict[str, Any]) -> None:
        rtype = by_plural(plural)
        assert rtype is not None
        admission.prepare_create(plural, obj)
        self.store.create(rtype, obj["metadata"].get("namespace"), obj)

    async def wait_for(
        self, name: str, predicate: Predicate, within: float = 10, namespace: str = "default"
    ) -> dict[str, Any]:
        """The first version of pod ``name`` (current or future) that satisfies ``predicate``."""
        current = self.store.get_pod(namespace, name)
        if current is not None and predicate(current):
            return current

        async def next_match() -> dict[str, Any]:
            while True:
                event = await self.events.get()
                self.history.append(event)
                if event.pod["metadata"]["name"] == name and predicate(event.pod):
                    return event.pod

        return await asyncio.wait_for(next_match(), within)

    async def wait_deleted(
        self, name: str, within: float = 10, namespace: str = "default"
    ) -> dict[str, Any]:
        if self.store.get_pod(namespace, name) is None:
            return {}

        async def gone() -> dict[str, Any]:
            while True:
                event = await self.events.get()
                self.history.append(event)
                if event.type == "DELETED" and event.pod["metadata"]["name"] == name:
                    return event.pod

        return await asyncio.wait_for(gone(), within)

    def log(self, name: str, container: str = "main") -> str:
        buffer = self.store.log_buffer("default", name, container)
        if buffer is None:
            return self.log_seen.get(name, "")
        text = b"".join(line for _, line in buffer.snapshot(include_partial=True)).decode()
        self.log_seen[name] = text  # buffers go with the pod; keep what was read
        return text

    async def wait_log(self, name: str, text: str, within: float = 10) -> None:
        """Until the pod's log contains ``text`` (woken by the log buffer's changes)."""

        async def appears() -> None:
            while text not in self.log(name):
                buffer = self.store.log_buffer("default", name, "main")
                if buffer is None:
                    await asyncio.sleep(0.02)  # no output yet: no buffer to wait on
                else:
                    await buffer.changed().wait()

        await asyncio.wait_for(appears(), within)

    def phases(self, name: str) -> list[str]:
        """Distinct phases pod ``name`` went through, in order, as seen so far."""
        seen: list[str] = []
        for event in self.history:
            if event.pod["metadata"]["name"] == name:
                phase = (event.pod.get("status") or {}).get("phase", "")
                if not seen or seen[-1] != phase:
                    seen.append(phase)
        return seen


def phase_is(*phases: str) -> Predicate:
    return lambda pod: (pod.get("status") or {}).get("phase") in phases


def waiting_reason(reason: str) -> Predicate:
    def check(pod: dict[str, Any]) -> bool:
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            if (status.get("state") or {}).get("waiting", {}).get("reason") == reason:
                return True
        return False

    return check


def container(name: str = "main", *command: str, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name, "image": "python", **fields}
    if command:
        body["command"] = list(command)
    return body


def python(code: str, name: str = "main", **fields: Any) -> dict[str, Any]:
    return container(name, PYTHON, "-c", code, **fields)


def terminated(pod: dict[str, Any], name: str = "main") -> dict[str, Any]:
    for status in pod["status"]["containerStatuses"]:
        if status["name"] == name:
            return dict(status["state"]["terminated"])
    raise AssertionError(f"no container {name}")


def condition(pod: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(c for c in pod["status"]["conditions"] if c["type"] == kind)
