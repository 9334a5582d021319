"""The scheduler's loop: place pending pods on the node as they come and as room frees up.

Decisions are :func:`kube_emulator.kubelet.scheduler.schedule`; this module feeds it the
kubelet's cache of pods and writes the outcome: a binding plus ``PodScheduled=True``, or
``PodScheduled=False``/``Unschedulable`` with the scheduler's message. A pod found
unschedulable is tried again only after capacity frees (a pod on the node ends or goes
away), like kube-scheduler's unschedulable queue; passes are coalesced.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from kube_emulator.errors import ApiError
from kube_emulator.kubelet.context import KubeletContext
from kube_emulator.kubelet.scheduler import DEFAULT_SCHEDULER as SCHEDULER
from kube_emulator.kubelet.scheduler import Node, Taint, schedule, wants_scheduling
from kube_emulator.kubelet.status import scheduled_condition, unschedulable_status

NODE_RECHECK_SECONDS = 1.0


def _order(pod: Mapping[str, Any]) -> tuple[str, str, str]:
    metadata = pod.get("metadata") or {}
    return (
        metadata.get("creationTimestamp", ""),
        metadata.get("namespace", ""),
        metadata.get("name", ""),
    )


def _scheduled_message(pod: Mapping[str, Any]) -> str | None:
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            return str(condition.get("message", ""))
    return None


class SchedulingLoop:
    """Runs scheduling passes over ``pods`` (uid -> latest pod) whenever woken."""

    def __init__(
        self,
        context: KubeletContext,
        pods: dict[str, dict[str, Any]],
        *,
        on_bound: Callable[[dict[str, Any]], None],
    ) -> None:
        self._ctx = context
        self._pods = pods
        self._on_bound = on_bound
        self._wake = asyncio.Event()
        self._epoch = 0
        self._tried: dict[str, int] = {}  # uid -> capacity epoch of its last failed attempt
        self._seen: tuple[bool, tuple[Taint, ...]] = (False, context.node.taints)
        self._current_node = context.node

    def wake(self) -> None:
        """A new pod may want placing."""
        self._wake.set()

    def capacity_freed(self) -> None:
        """A pod left the node: every pending pod deserves another try."""
        self._epoch += 1
        self._wake.set()

    def forget(self, uid: str) -> None:
        self._tried.pop(uid, None)

    async def run(self) -> None:
        while True:
            # Node changes (a cordon lifted) arrive without a pod event: look again now and
            # then, as kube-scheduler re-queues unschedulable pods on node updates.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(NODE_RECHECK_SECONDS):
                    await self._wake.wait()
            self._wake.clear()
            self.run_pass()
            # Yield so a burst of creations is placed in one pass, not one pass per pod.
            await asyncio.sleep(0)

    def _node(self) -> Node:
        """The node as the scheduler sees it now: cordoned or not (its spec.unschedulable)."""
        node = self._ctx.node
        obj = self._ctx.store.get_object("nodes", None, node.name) or {}
        spec = obj.get("spec") or {}
        cordoned = bool(spec.get("unschedulable"))
        taints = tuple(
            Taint(t.get("key", ""), t.get("value", ""), t.get("effect", "NoSchedule"))
            for t in spec.get("taints") or []
        )
        if (cordoned, taints) != self._seen:
            self._seen = (cordoned, taints)
            self._epoch += 1  # every pending pod deserves another look
        if not obj:
            return node
        return replace(node, unschedulable=cordoned, taints=taints)

    def run_pass(self) -> None:
        """Try every pending pod not yet tried at the current capacity, oldest first."""
        self._current_node = self._node()
        pending = sorted((p for p in self._pods.values() if wants_scheduling(p)), key=_order)
        for pod in pending:
            uid = pod["metadata"]["uid"]
            if self._tried.get(uid) == self._epoch:
                continue
            with contextlib.suppress(ApiError):
                self._place(pod, uid)

    def _place(self, pod: dict[str, Any], uid: str) -> None:
        store = self._ctx.store
        metadata = pod["metadata"]
        namespace, name = metadata.get("namespace", "default"), metadata["name"]
        decision = schedule(pod, self._current_node, self._pods.values())
        now = datetime.now(UTC)
        if decision.node_name is None:
            self._tried[uid] = self._epoch
            if _scheduled_message(pod) != decision.message:
                self._ctx.record_event(
                    pod, "FailedScheduling", decision.message, warning=True, component=SCHEDULER
                )
                updated = store.update_pod_status(
                    namespace, name, unschedulable_status(pod, decision.message, now), uid=uid
                )
                self._pods[uid] = updated
            return
        self._tried.pop(uid, None)
        bound = store.bind_pod(namespace, name, decision.node_name, uid=uid)
        status = dict(bound.get("status") or {})
        others = [c for c in status.get("conditions") or [] if c.get("type") != "PodScheduled"]
        status["conditions"] = [*others, scheduled_condition(now)]
        status.setdefault("phase", "Pending")
        updated = store.update_pod_status(namespace, name, status, uid=uid)
        self._pods[uid] = updated
        self._ctx.record_event(
            pod,
            "Scheduled",
            f"Successfully assigned {namespace}/{name} to {decision.node_name}",
            component=SCHEDULER,
        )
        self._on_bound(updated)
