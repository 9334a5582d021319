"""The emulator's node: kube-scheduler and the kubelet for one node, on the emulator's loop.

It follows pods through the store's in-process subscription (the way the real components
follow them through watches), places pending pods with :mod:`.scheduling`, and gives each
pod bound to the node a :class:`~.pod_worker.PodWorker`. The store calls
:meth:`Kubelet.on_pod_deleting` when a user deletes a pod that runs here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hodei.domain.quantities import cpu_millicores, memory_bytes
from kube_emulator.errors import ApiError
from kube_emulator.kubelet.context import NODE_NAME, KubeletContext, Timings
from kube_emulator.kubelet.images import ImageCatalog
from kube_emulator.kubelet.node import node_object, scheduler_node
from kube_emulator.kubelet.pod_worker import PodWorker
from kube_emulator.kubelet.resources import Requests
from kube_emulator.kubelet.runtime.base import PodRuntime
from kube_emulator.kubelet.scheduler import TERMINAL_PHASES, Taint, occupies, wants_scheduling
from kube_emulator.kubelet.scheduling import SchedulingLoop
from kube_emulator.kubelet_api import PodEvent, PodStore

KUBELET_VERSION = "v1.33.0"
log = logging.getLogger("kube_emulator.kubelet")


def make_runtime(name: str, workdir: Path) -> PodRuntime:
    """The runtime called ``name``: ``process`` (default) or ``podman``."""
    if name == "process":
        from kube_emulator.kubelet.runtime.process import ProcessRuntime, host_env

        return ProcessRuntime(base_env=host_env(os.environ))
    if name == "podman":
        from kube_emulator.kubelet.runtime.podman import PodmanRuntime

        return PodmanRuntime(workdir=workdir / "podman")
    raise ValueError(f"unknown kubelet runtime {name!r}; accepted: process, podman")


class Kubelet:
    """Scheduler + kubelet of the node ``emulator-node``; see the module docstring."""

    def __init__(
        self,
        store: PodStore,
        *,
        images: Iterable[str] = (),
        runtime: str | PodRuntime = "process",
        node_cpu: str = "4",
        node_memory: str = "8Gi",
        node_labels: Mapping[str, str] | None = None,
        node_taints: Iterable[Taint] = (),
        workdir: Path | None = None,
        timings: Timings | None = None,
    ) -> None:
        self._store = store
        self._images = ImageCatalog.of(images)
        self._runtime_choice = runtime
        self._cpu, self._memory = node_cpu, node_memory
        self._node_labels = dict(node_labels or {})
        self._node_taints = tuple(node_taints)
        self._given_workdir = workdir
        self._timings = timings or Timings()
        self._pods: dict[str, dict[str, Any]] = {}  # uid -> latest pod seen
        self._workers: dict[str, PodWorker] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._done: set[str] = set()  # uids whose worker has finished
        self._context: KubeletContext | None = None
        self._queue: asyncio.Queue[PodEvent] | None = None
        self._scheduling: SchedulingLoop | None = None
        self._owned_workdir: Path | None = None

    async def start(self) -> None:
        """Register the node, subscribe to pods and start scheduling."""
        workdir = self._given_workdir
        if workdir is None:
            workdir = self._owned_workdir = Path(tempfile.mkdtemp(prefix="kube-emulator-node-"))
        workdir.mkdir(parents=True, exist_ok=True)
        choice = self._runtime_choice
        runtime = make_runtime(choice, workdir) if isinstance(choice, str) else choice
        allocatable = Requests(cpu_millicores(self._cpu), memory_bytes(self._memory))
        self._context = KubeletContext(
            store=self._store,
            runtime=runtime,
            catalog=self._images,
            node=scheduler_node(
                NODE_NAME, allocatable, labels=self._node_labels, taints=self._node_taints
            ),
            workdir=workdir,
            timings=self._timings,
        )
        self._register_node(choice if isinstance(choice, str) else "custom")
        self._scheduling = SchedulingLoop(self._context, self._pods, on_bound=self._observe)
        self._queue = self._store.subscribe_pods()
        self._spawn(self._dispatch(self._queue))
        self._spawn(self._scheduling.run())

    async def stop(self) -> None:
        """Kill every container, stop the loops and release the runtime."""
        if self._queue is not None:
            self._store.unsubscribe_pods(self._queue)
        for worker in self._workers.values():
            worker.request_gone()
        workers = [t for t in self._tasks if t.get_name().startswith("pod:")]
        await asyncio.gather(*workers, return_exceptions=True)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._context is not None:
            await self._context.runtime.close()
        if self._owned_workdir is not None:
            shutil.rmtree(self._owned_workdir, ignore_errors=True)

    def on_pod_deleting(self, pod: dict[str, Any]) -> None:
        """The store's call when a pod on this node is deleted (see ``kubelet_api``)."""
        metadata = pod["metadata"]
        uid = metadata["uid"]
        grace = float(metadata.get("deletionGracePeriodSeconds") or 0)
        worker = self._workers.get(uid)
        if worker is not None:
            if grace > 0:
                worker.request_delete(grace)
            else:
                worker.request_gone()
        elif grace > 0:
            # Nothing runs for it (not started yet, or already finished): remove it now,
            # once the store's delete call has returned.
            namespace, name = metadata.get("namespace", "default"), metadata["name"]
            asyncio.get_running_loop().call_soon(self._finalize, namespace, name, uid)

    def _finalize(self, namespace: str, name: str, uid: str) -> None:
        with contextlib.suppress(ApiError):
            self._store.finalize_pod_deletion(namespace, name, uid=uid)

    # --- internals --------------------------------------------------------------------

    def _register_node(self, runtime: str) -> None:
        create = getattr(self._store, "create_object", None)
        if create is None:
            return
        assert self._context is not None
        node = node_object(
            self._context.node,
            cpu=self._cpu,
            memory=self._memory,
            runtime=runtime,
            kubelet_version=KUBELET_VERSION,
            now=datetime.now(UTC),
        )
        with contextlib.suppress(ApiError):
            create("nodes", node)

    def _spawn(self, coroutine: Any, name: str | None = None) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coroutine, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(_log_failure)
        return task

    async def _dispatch(self, queue: asyncio.Queue[PodEvent]) -> None:
        while True:
            event = await queue.get()
            try:
                if event.type == "DELETED":
                    self._forget(event.pod)
                else:
                    self._observe(event.pod)
            except Exception:
                # One bad pod must not stop the node; say so loudly and go on.
                log.exception("kubelet: handling %s of a pod failed", event.type)

    def _observe(self, pod: dict[str, Any]) -> None:
        assert self._scheduling is not None
        uid = pod["metadata"]["uid"]
        before = self._pods.get(uid)
        self._pods[uid] = pod
        if before is not None and occupies(before, NODE_NAME) and not occupies(pod, NODE_NAME):
            self._scheduling.capacity_freed()
        if wants_scheduling(pod):
            self._scheduling.wake()
        elif (pod.get("spec") or {}).get("nodeName") == NODE_NAME:
            self._maybe_start(pod)

    def _forget(self, pod: dict[str, Any]) -> None:
        assert self._scheduling is not None
        uid = pod["metadata"]["uid"]
        before = self._pods.pop(uid, None)
        self._scheduling.forget(uid)
        worker = self._workers.get(uid)
        if worker is not None:
            worker.request_gone()
        if before is not None and occupies(before, NODE_NAME):
            self._scheduling.capacity_freed()

    def _maybe_start(self, pod: dict[str, Any]) -> None:
        metadata = pod["metadata"]
        uid = metadata["uid"]
        if uid in self._workers or uid in self._done:
            return
        if (pod.get("status") or {}).get("phase") in TERMINAL_PHASES:
            return
        if metadata.get("deletionTimestamp"):
            self._done.add(uid)
            self._finalize(metadata.get("namespace", "default"), metadata["name"], uid)
            return
        assert self._context is not None
        worker = PodWorker(pod, self._context)
        self._workers[uid] = worker
        task = self._spawn(worker.run(), name=f"pod:{uid}")
        task.add_done_callback(lambda _: self._worker_done(uid))

    def _worker_done(self, uid: str) -> None:
        self._workers.pop(uid, None)
        self._done.add(uid)
        if self._scheduling is not None:
            self._scheduling.capacity_freed()


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("kubelet: %s failed", task.get_name(), exc_info=task.exception())
