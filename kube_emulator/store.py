"""The emulator's state: objects plus the pod lifecycle, logs and namespace teardown.

`ObjectStore` is kind-agnostic; this layer adds what kube-apiserver and the kubelet do
together for pods (graceful deletion, status written by the node, container logs) and
what the namespace controller does (deleting a namespace removes its contents first).
It also implements `kubelet_api.PodStore`, the in-process API the emulated kubelet uses.
All methods run on the emulator's event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import datetime
from typing import Any

from . import errors
from .kubelet_api import Kubelet, PodEvent
from .logs import LogBuffer
from .meta import clone, rfc3339
from .objects import ObjectStore
from .resources import RESOURCE_TYPES, ResourceType, by_plural, resource_type
from .watch import WatchEvent

PODS = resource_type("pods")
NAMESPACES = resource_type("namespaces")
NODES = resource_type("nodes")
# The taint the node lifecycle controller puts on a node that stopped reporting.
UNREACHABLE_TAINT = {"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule"}
EVENTS = resource_type("events")

DEFAULT_GRACE_SECONDS = 30
BACKSTOP_SECONDS = 15.0  # after the grace period, if nobody finalized a pod deletion


def _terminated(pod: dict[str, Any], container: str) -> bool:
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        if status.get("name") == container:
            return "terminated" in (status.get("state") or {})
    return False


class Store(ObjectStore):
    """Objects, pods' lifecycle and logs; see /tmp docs in `kubelet_api` for the kubelet side."""

    def __init__(self, *, history: int = 10_000) -> None:
        super().__init__(history=history)
        self.kubelet: Kubelet | None = None
        self._pod_queues: list[asyncio.Queue[PodEvent]] = []
        self._logs: dict[tuple[str, str], dict[str, LogBuffer]] = {}  # (ns, pod) -> container
        self._timers: dict[tuple[str, str], asyncio.TimerHandle] = {}
        self.closed = False  # set at shutdown: open log streams end
        self._purged: set[str] = set()  # uids of terminating namespaces already emptied
        self.namespace_purge_delay = 0.3  # seconds between DELETE and the controller's purge
        # While the node is lost its kubelet cannot reach the API: what it writes for the
        # pods bound there is held back and applied when the node is back.
        self.node_lost = False
        self._held_statuses: dict[tuple[str, str, str], dict[str, Any]] = {}
        self._held_finals: set[tuple[str, str, str]] = set()
        self._before_lost: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.add_listener(self._on_event)

    # --- events fan-out to the kubelet, log followers and namespace teardown -------------

    def _on_event(self, event: WatchEvent) -> None:
        if event.resource == "namespaces" and event.type == "ADDED":
            self._create_default_serviceaccount(event.obj["metadata"]["name"])
        if event.resource == "namespaces" and event.type == "MODIFIED":
            # Its last finalizer removed: a purged Terminating namespace can go now.
            name = event.obj["metadata"]["name"]
            asyncio.get_running_loop().call_soon(self._finish_namespace_if_empty, name)
        if event.resource != "pods":
            return
        name = event.obj["metadata"]["name"]
        for queue in self._pod_queues:
            queue.put_nowait(PodEvent(event.type, clone(event.obj)))  # type: ignore[arg-type]
        for buffer in self._logs.get((event.namespace, name), {}).values():
            buffer.notify()
        if event.type == "DELETED":
            self._logs.pop((event.namespace, name), None)
            timer = self._timers.pop((event.namespace, name), None)
            if timer:
                timer.cancel()
            self._finish_namespace_if_empty(event.namespace)

    def _create_default_serviceaccount(self, namespace: str) -> None:
        # The ServiceAccount controller gives every namespace a "default" account.
        serviceaccounts = resource_type("serviceaccounts")
        if self.get(serviceaccounts, namespace, "default") is None:
            self.create(serviceaccounts, namespace, {"metadata": {"name": "default"}})

    # --- kubelet API (kubelet_api.PodStore) ---------------------------------------------

    def subscribe_pods(self) -> asyncio.Queue[PodEvent]:
        """A queue receiving ADDED for every current pod, then every pod change."""
        queue: asyncio.Queue[PodEvent] = asyncio.Queue()
        for pod in self.list(PODS, None):
            queue.put_nowait(PodEvent("ADDED", clone(pod)))
        self._pod_queues.append(queue)
        return queue

    def unsubscribe_pods(self, queue: asyncio.Queue[PodEvent]) -> None:
        """Stop feeding ``queue``."""
        if queue in self._pod_queues:
            self._pod_queues.remove(queue)

    def list_pods(self) -> list[dict[str, Any]]:
        """Every pod, deep-copied."""
        return [clone(pod) for pod in self.list(PODS, None)]

    def get_pod(self, namespace: str, name: str) -> dict[str, Any] | None:
        """One pod, deep-copied, or None."""
        pod = self.get(PODS, namespace, name)
        return clone(pod) if pod is not None else None

    def _pod_for_write(self, namespace: str, name: str, uid: str | None) -> dict[str, Any]:
        pod = self.require(PODS, namespace, name)
        if uid is not None and pod["metadata"]["uid"] != uid:
            raise errors.not_found("pods", name)
        return pod

    def bind_pod(
        self, namespace: str, name: str, node_name: str, *, uid: str | None = None
    ) -> dict[str, Any]:
        """Set ``spec.nodeName`` (the scheduler's binding)."""
        pod = clone(self._pod_for_write(namespace, name, uid))
        pod["spec"]["nodeName"] = node_name
        return clone(self.replace(PODS, namespace, name, pod))

    def update_pod_status(
        self, namespace: str, name: str, status: dict[str, Any], *, uid: str | None = None
    ) -> dict[str, Any]:
        """Replace the pod's status (the kubelet's status manager write)."""
        current = self._pod_for_write(namespace, name, uid)
        if self.node_lost and (current.get("spec") or {}).get("nodeName"):
            self._held_statuses[(namespace, name, current["metadata"]["uid"])] = clone(status)
            return clone(current)
        pod = dict(current)
        pod["metadata"] = dict(pod["metadata"])
        pod["status"] = clone(status)
        return clone(self.replace(PODS, namespace, name, pod))

    def finalize_pod_deletion(self, namespace: str, name: str, *, uid: str | None = None) -> None:
        """Remove a pod whose containers have stopped; no-op when already gone."""
        pod = self.get(PODS, namespace, name)
        if pod is None or (uid is not None and pod["metadata"]["uid"] != uid):
            return
        if self.node_lost and (pod.get("spec") or {}).get("nodeName"):
            self._held_finals.add((namespace, name, pod["metadata"]["uid"]))
            return
        self.remove(PODS, namespace, name)

    # --- node loss (fault control) -----------------------------------------------------

    def set_node_lost(self, lost: bool) -> None:
        """Make the node stop reporting (``lost``) or come back.

        Lost: its Ready condition turns Unknown, it gets the ``unreachable`` NoSchedule
        taint, and every unfinished pod bound to it goes to phase ``Unknown`` (reason
        ``NodeLost``) while its containers keep running unseen. Back: Ready again, the
        taint lifted, and what the kubelet wrote meanwhile is applied."""
        if lost == self.node_lost:
            return
        self.node_lost = lost
        for node in self.list(NODES, None):
            self._mark_node(node, lost)
        if lost:
            for pod in self.list(PODS, None):
                node_name = (pod.get("spec") or {}).get("nodeName")
                if node_name and (pod.get("status") or {}).get("phase") not in (
                    "Succeeded",
                    "Failed",
                ):
                    lost_pod = clone(pod)
                    lost_pod["status"] = {
                        **(pod.get("status") or {}),
                        "phase": "Unknown",
                        "reason": "NodeLost",
                        "message": f"Node {node_name} which was running pod "
                        f"{pod['metadata']['name']} is unresponsive",
                    }
                    meta = pod["metadata"]
                    key = (meta.get("namespace", ""), meta["name"], meta["uid"])
                    self._before_lost[key] = clone(pod.get("status") or {})
                    self.replace(PODS, meta.get("namespace"), meta["name"], lost_pod)
            return
        # The kubelet reports again: its last word on each pod, or what it said before.
        statuses = {**self._before_lost, **self._held_statuses}
        self._before_lost, self._held_statuses = {}, {}
        for (namespace, name, uid), status in statuses.items():
            with contextlib.suppress(errors.ApiError):
                self.update_pod_status(namespace, name, status, uid=uid)
        finals, self._held_finals = self._held_finals, set()
        for namespace, name, uid in finals:
            self.finalize_pod_deletion(namespace, name, uid=uid)

    def _mark_node(self, node: dict[str, Any], lost: bool) -> None:
        marked = clone(node)
        status = marked.setdefault("status", {})
        for condition in status.get("conditions") or []:
            if condition.get("type") == "Ready":
                condition.update(
                    {
                        "status": "Unknown",
                        "reason": "NodeStatusUnknown",
                        "message": "Kubelet stopped posting node status.",
                    }
                    if lost
                    else {
                        "status": "True",
                        "reason": "KubeletReady",
                        "message": "kubelet is posting ready status",
                    }
                )
                condition["lastTransitionTime"] = rfc3339()
        spec = marked.setdefault("spec", {})
        taints = [t for t in spec.get("taints") or [] if t.get("key") != UNREACHABLE_TAINT["key"]]
        if lost:
            taints.append(dict(UNREACHABLE_TAINT))
        if taints:
            spec["taints"] = taints
        else:
            spec.pop("taints", None)
        self.replace(NODES, None, node["metadata"]["name"], marked)

    def append_pod_log(
        self,
        namespace: str,
        name: str,
        container: str,
        data: bytes,
        at: datetime | float | None = None,
    ) -> None:
        """Append a container's output to its log buffer (``at``: when it was written)."""
        when = at.timestamp() if isinstance(at, datetime) else at
        self.ensure_log_buffer(namespace, name, container).append(data, when)

    def get_object(self, resource: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        """Any object by resource plural (configmaps, secrets ...), deep-copied, or None."""
        rtype = by_plural(resource)
        if rtype is None:
            return None
        obj = self.get(rtype, namespace if rtype.namespaced else None, name)
        return clone(obj) if obj is not None else None

    def log_buffer(self, namespace: str, name: str, container: str) -> LogBuffer | None:
        """The buffer ``pods/log`` reads, if the container produced output."""
        return self._logs.get((namespace, name), {}).get(container)

    def ensure_log_buffer(self, namespace: str, name: str, container: str) -> LogBuffer:
        """The container's buffer, created empty for a follower waiting for first output."""
        containers = self._logs.setdefault((namespace, name), {})
        buffer = containers.get(container)
        if buffer is None:
            buffer = containers[container] = LogBuffer()
        return buffer

    def container_done(self, namespace: str, name: str, container: str) -> bool:
        """Whether a follower should stop: container terminated, pod gone or shutting down."""
        pod = self.get(PODS, namespace, name)
        return self.closed or pod is None or _terminated(pod, container)

    def close(self) -> None:
        """Shutdown: end log streams and watches so the server can stop promptly."""
        self.closed = True
        for containers in self._logs.values():
            for buffer in containers.values():
                buffer.notify()
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self.hub.close_all()

    def record_event(
        self,
        namespace: str,
        *,
        involved: dict[str, Any],
        reason: str,
        message: str,
        type: str = "Normal",
        component: str = "kubelet",
    ) -> None:
        """Create a core/v1 Event about ``involved`` (an object or an object reference).

        ``component`` is the reporter: "kubelet", or "default-scheduler" for scheduling.
        """
        if self.get(NAMESPACES, None, namespace) is None:
            return
        meta = involved.get("metadata", involved)
        now = rfc3339()
        event = {
            # Named like the real recorder: object name + hex nanoseconds, so names sort by time.
            "metadata": {"name": self._event_name(namespace, str(meta.get("name", "unknown")))},
            "involvedObject": {
                "apiVersion": involved.get("apiVersion", "v1"),
                "kind": involved.get("kind", "Pod"),
                "namespace": meta.get("namespace", namespace),
                "name": meta.get("name"),
                "uid": meta.get("uid"),
                "resourceVersion": meta.get("resourceVersion"),
            },
            "reason": reason,
            "message": message,
            "type": type,
            "source": {"component": component},
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
            "reportingComponent": component,
            "reportingInstance": "",
        }
        self.create(EVENTS, namespace, event)

    def _event_name(self, namespace: str, object_name: str) -> str:
        stamp = time.time_ns()
        while self.get(EVENTS, namespace, f"{object_name}.{stamp:x}") is not None:
            stamp += 1
        return f"{object_name}.{stamp:x}"

    def create_object(self, plural: str, obj: dict[str, Any]) -> dict[str, Any]:
        """Create any object by resource plural (e.g. a Node); returns a copy."""
        rtype = by_plural(plural)
        if rtype is None:
            raise errors.not_found(plural, obj.get("metadata", {}).get("name", ""))
        namespace = obj.get("metadata", {}).get("namespace")
        return clone(self.create(rtype, namespace, clone(obj)))

    # --- deletion ------------------------------------------------------------------------

    def delete(
        self, rtype: ResourceType, namespace: str | None, name: str, *, grace: int | None = None
    ) -> tuple[dict[str, Any], bool]:
        """Delete by kind rules; returns (object, removed_now)."""
        if rtype.plural == "pods":
            return self.delete_pod(namespace or "", name, grace)
        if rtype.plural == "namespaces":
            return self.delete_namespace(name)
        return self.remove(rtype, namespace, name), True

    def delete_pod(
        self, namespace: str, name: str, grace: int | None
    ) -> tuple[dict[str, Any], bool]:
        """Graceful when a kubelet runs the bound pod; immediate otherwise."""
        pod = self.require(PODS, namespace, name)
        spec = pod.get("spec") or {}
        if grace is None:
            grace = spec.get("terminationGracePeriodSeconds", DEFAULT_GRACE_SECONDS)
        grace = max(0, int(grace or 0))
        bound = bool(spec.get("nodeName"))
        terminal = (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")
        if pod["metadata"].get("deletionTimestamp") and grace > 0:
            return pod, False  # already terminating; the kubelet is on it
        if self.kubelet is None or not bound or grace == 0 or terminal:
            final = self.remove(PODS, namespace, name)
            if self.kubelet is not None and bound:
                self.kubelet.on_pod_deleting(clone(final))
            return final, True
        marked = dict(pod)
        marked["metadata"] = {
            **pod["metadata"],
            "deletionTimestamp": rfc3339(time.time() + grace),
            "deletionGracePeriodSeconds": grace,
            "resourceVersion": str(self._bump()),
        }
        self._objects["pods"][(namespace, name)] = marked
        self._emit("MODIFIED", PODS, marked, pod)
        self.kubelet.on_pod_deleting(clone(marked))
        uid = marked["metadata"]["uid"]
        self._timers[(namespace, name)] = asyncio.get_running_loop().call_later(
            grace + BACKSTOP_SECONDS, lambda: self.finalize_pod_deletion(namespace, name, uid=uid)
        )
        return marked, False

    def delete_namespace(self, name: str) -> tuple[dict[str, Any], bool]:
        """Mark the namespace Terminating; its contents go shortly after, then the namespace.

        Like the namespace controller, the purge runs asynchronously: right after the
        DELETE the namespace still exists (phase Terminating) and so do its objects. While
        ``metadata.finalizers`` remain it stays Terminating (``kubectl get ns``), and the
        NamespaceLifecycle check refuses new objects in it; it goes once they are removed.
        """
        ns = self.require(NAMESPACES, None, name)
        if ns["metadata"].get("deletionTimestamp"):
            return ns, False
        marked = clone(ns)
        marked["metadata"]["deletionTimestamp"] = rfc3339()
        marked["metadata"]["deletionGracePeriodSeconds"] = 0
        marked.setdefault("status", {})["phase"] = "Terminating"
        marked["metadata"]["resourceVersion"] = str(self._bump())
        self._objects["namespaces"][("", name)] = marked
        self._emit("MODIFIED", NAMESPACES, marked, ns)
        asyncio.get_running_loop().call_later(
            self.namespace_purge_delay, self._purge_namespace, name, marked["metadata"]["uid"]
        )
        return marked, False

    def _purge_namespace(self, name: str, uid: str) -> None:
        ns = self.get(NAMESPACES, None, name)
        if ns is None or ns["metadata"]["uid"] != uid:
            return
        for rtype in RESOURCE_TYPES:
            if not rtype.namespaced or rtype.create_only or rtype.plural == "pods":
                continue
            for obj in self.list(rtype, name):
                self.remove(rtype, name, obj["metadata"]["name"])
        for pod in self.list(PODS, name):
            if pod["metadata"].get("deletionTimestamp") is None:
                self.delete_pod(name, pod["metadata"]["name"], None)
        self._purged.add(uid)
        self._finish_namespace_if_empty(name)

    def _finish_namespace_if_empty(self, name: str) -> bool:
        ns = self.get(NAMESPACES, None, name)
        if ns is None or ns["metadata"]["uid"] not in self._purged:
            return False
        if self.list(PODS, name) or ns["metadata"].get("finalizers"):
            return False  # stays Terminating while pods or finalizers remain
        self._purged.discard(ns["metadata"]["uid"])
        self.remove(NAMESPACES, None, name)
        return True
