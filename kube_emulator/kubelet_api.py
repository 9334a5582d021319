"""The seam between the API server half of the emulator and its kubelet/scheduler half.

The kubelet lives in `kube_emulator.kubelet` and is optional (``EmulatorConfig.kubelet``).
It runs on the emulator's event loop and talks to the store directly, the way the real
kubelet talks to the API server, but without HTTP: it is told about pods through an
in-process subscription and writes status, bindings, logs and final deletions back
through the store methods listed in `PodStore`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

PodEventType = Literal["ADDED", "MODIFIED", "DELETED"]


@dataclass(frozen=True)
class PodEvent:
    """One change of one pod, as seen by the kubelet (``pod`` is a private deep copy)."""

    type: PodEventType
    pod: dict[str, Any]


class PodStore(Protocol):
    """What the store offers the kubelet; every method must be called on the emulator loop."""

    def subscribe_pods(self) -> asyncio.Queue[PodEvent]: ...

    def unsubscribe_pods(self, queue: asyncio.Queue[PodEvent]) -> None: ...

    def list_pods(self) -> list[dict[str, Any]]: ...

    def get_pod(self, namespace: str, name: str) -> dict[str, Any] | None: ...

    def bind_pod(
        self, namespace: str, name: str, node_name: str, *, uid: str | None = None
    ) -> dict[str, Any]: ...

    def update_pod_status(
        self, namespace: str, name: str, status: dict[str, Any], *, uid: str | None = None
    ) -> dict[str, Any]: ...

    def finalize_pod_deletion(
        self, namespace: str, name: str, *, uid: str | None = None
    ) -> None: ...

    def append_pod_log(
        self,
        namespace: str,
        name: str,
        container: str,
        data: bytes,
        at: datetime | float | None = None,
    ) -> None: ...

    def get_object(
        self, resource: str, namespace: str | None, name: str
    ) -> dict[str, Any] | None: ...

    def create_object(self, plural: str, obj: dict[str, Any]) -> dict[str, Any]: ...

    def record_event(
        self,
        namespace: str,
        *,
        involved: dict[str, Any],
        reason: str,
        message: str,
        type: str = "Normal",
        component: str = "kubelet",
    ) -> None: ...


class Kubelet(Protocol):
    """What the emulator expects from ``kube_emulator.kubelet.Kubelet``.

    Constructed as ``Kubelet(store, images=..., runtime=..., node_cpu=..., node_memory=...)``
    on the emulator loop, then started; stopped before the server shuts down.
    """

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def on_pod_deleting(self, pod: dict[str, Any]) -> None:
        """A bound pod is being deleted: stop its containers, then finalize the deletion.

        Called synchronously on the loop (must not block). ``pod`` carries
        ``metadata.deletionTimestamp`` and ``metadata.deletionGracePeriodSeconds``: send
        SIGTERM now, SIGKILL once the grace period has passed, then call
        ``store.finalize_pod_deletion(ns, name, uid=uid)``. With grace 0 the object is
        already gone from the store; only kill the containers.
        """
        ...
