"""One pod's life on the node, from binding to its final status (and deletion).

The kubelet's pod worker: report ``ContainerCreating``; "pull" the images (unknown ones
stay waiting in ``ErrImagePull`` then ``ImagePullBackOff``); resolve each container's
configuration (retrying ``CreateContainerConfigError`` until the ConfigMap or Secret
appears); start the containers; report each one's end. Three things cut that short:
``activeDeadlineSeconds`` (phase Failed, reason DeadlineExceeded), a graceful deletion
(SIGTERM, SIGKILL after the grace period, then the object is finalized) and the object
vanishing (grace 0: kill, write nothing). Every status goes through the store's status
write, so API watchers see each step as a MODIFIED event.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kube_emulator.errors import ApiError
from kube_emulator.kubelet import images
from kube_emulator.kubelet.context import NODE_IP, KubeletContext
from kube_emulator.kubelet.env import EnvContext
from kube_emulator.kubelet.launch import ContainerError, pod_launch, prepare_directories
from kube_emulator.kubelet.lookup import StoreLookup
from kube_emulator.kubelet.runtime.base import (
    ContainerExit,
    FailedStart,
    ImageNotPresent,
    PodLaunch,
    PodSandbox,
)
from kube_emulator.kubelet.status import (
    CONTAINER_CREATING,
    DEADLINE_EXCEEDED,
    DEADLINE_MESSAGE,
    EPOCH,
    POD_INITIALIZING,
    ContainerRecord,
    PodRecord,
    Running,
    Terminated,
    Waiting,
    pod_status,
)

STATUS_UNKNOWN = "ContainerStatusUnknown"
STATUS_UNKNOWN_MESSAGE = "The container could not be located when the pod was terminated"


class PodGone(Exception):
    """The pod object no longer exists (or was recreated under the same name)."""


def _now() -> datetime:
    return datetime.now(UTC)


class PodWorker:
    """Runs one bound pod; :meth:`run` returns when the pod is finished with."""

    def __init__(self, pod: dict[str, Any], context: KubeletContext) -> None:
        metadata = pod["metadata"]
        self.namespace: str = metadata.get("namespace", "default")
        self.name: str = metadata["name"]
        self.uid: str = metadata["uid"]
        self._pod = pod
        self._ctx = context
        self._stop = asyncio.Event()
        self._deleting = False
        self._deadline_hit = False
        self._gone = False
        self._grace = context.timings.default_grace
        self._sandbox: PodSandbox | None = None
        self._published: PodRecord | None = None
        spec = pod.get("spec") or {}
        inits = spec.get("initContainers") or []
        # Behind init containers, the containers wait with PodInitializing, as on a node.
        first = Waiting(POD_INITIALIZING) if inits else Waiting(CONTAINER_CREATING)
        self._record = PodRecord(
            containers=tuple(
                ContainerRecord(c["name"], c.get("image", ""), first)
                for c in spec.get("containers") or []
            ),
            start_time=_now(),
            host_ip=NODE_IP,
            init_containers=tuple(
                ContainerRecord(c["name"], c.get("image", ""), Waiting(POD_INITIALIZING))
                for c in inits
            ),
        )

    # --- requests from the kubelet (synchronous, on the loop) ---------------------------

    def request_delete(self, grace_seconds: float) -> None:
        """Graceful deletion: stop within ``grace_seconds``, then finalize the object."""
        if not self._deleting:
            self._deleting = True
            self._grace = grace_seconds
        self._stop.set()

    def request_gone(self) -> None:
        """The object was removed: kill everything now and write nothing more."""
        self._gone = True
        self._grace = 0
        self._stop.set()

    # --- the pod's life -------------------------------------------------------------------

    async def run(self) -> None:
        directory = self._ctx.workdir / "pods" / self.uid
        deadline = self._arm_deadline()
        try:
            self._publish()
            launch = await self._prepare(directory)
            if launch is not None and not self._stop.is_set():
                await self._run_containers(launch)
            self._finish()
        except PodGone:
            self._gone = True
        finally:
            if deadline is not None:
                deadline.cancel()
            if self._sandbox is not None:
                await self._sandbox.remove()
            await asyncio.to_thread(shutil.rmtree, directory, ignore_errors=True)
        if self._deleting and not self._gone:
            self._ctx.store.finalize_pod_deletion(self.namespace, self.name, uid=self.uid)

    def _arm_deadline(self) -> asyncio.TimerHandle | None:
        seconds = (self._pod.get("spec") or {}).get("activeDeadlineSeconds")
        if seconds is None:
            return None
        return asyncio.get_running_loop().call_later(float(seconds), self._on_deadline)

    def _on_deadline(self) -> None:
        if not self._stop.is_set():
            self._deadline_hit = True
            self._grace = float(
                (self._pod.get("spec") or {}).get(
                    "terminationGracePeriodSeconds", self._ctx.timings.default_grace
                )
            )
        self._stop.set()

    async def _sleep_or_stop(self, seconds: float) -> bool:
        """Wait ``seconds``; True when a stop was requested meanwhile."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)
        return self._stop.is_set()

    async def _prepare(self, directory: Path) -> PodLaunch | None:
        """Pull check and configuration; None when stopped before the containers could start."""
        spec = self._pod.get("spec") or {}
        every = [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]
        missing = [c for c in every if not self._ctx.catalog.has(c["image"])]
        if missing:
            await self._fail_pull(missing)
            return None
        for container in every:
            self._event(
                "Pulled", f'Container image "{container["image"]}" already present on machine'
            )
        context = EnvContext(
            pod=self._pod,
            lookup=StoreLookup(self._ctx.store),
            node_allocatable=self._ctx.node.allocatable,
        )
        while True:
            try:
                return pod_launch(self._pod, context=context, directory=directory)
            except ContainerError as error:
                self._set_waiting(error.container, Waiting(error.reason, str(error)))
            if await self._sleep_or_stop(self._ctx.timings.config_retry):
                return None

    async def _fail_pull(self, missing: list[dict[str, Any]]) -> None:
        for container in missing:
            image = container["image"]
            self._event(
                "Failed",
                f'Failed to pull image "{image}": {images.pull_error_message(image)}',
                warning=True,
            )
            self._set_waiting(
                container["name"], Waiting(images.ERR_IMAGE_PULL, images.pull_error_message(image))
            )
        if await self._sleep_or_stop(self._ctx.timings.image_back_off):
            return
        for container in missing:
            image = container["image"]
            self._event("BackOff", f'Back-off pulling image "{image}"')
            self._set_waiting(
                container["name"],
                Waiting(images.IMAGE_PULL_BACK_OFF, images.back_off_message(image)),
            )
        await self._stop.wait()

    def _set_waiting(self, name: str, state: Waiting) -> None:
        inits = {c.name: c for c in self._record.init_containers}
        if name in inits:
            current = inits[name]
            if current.state != state:
                record = ContainerRecord(name, current.image, state)
                self._record = self._record.with_init_container(record)
                self._publish()
            return
        current = next(c for c in self._record.containers if c.name == name)
        if current.state != state:
            self._record = self._record.with_container(ContainerRecord(name, current.image, state))
            if state.reason not in (images.ERR_IMAGE_PULL, images.IMAGE_PULL_BACK_OFF):
                self._event("Failed", f"Error: {state.message}", warning=True)
            self._publish()

    async def _run_containers(self, launch: PodLaunch) -> None:
        prepare_directories(launch)
        try:
            sandbox = await self._ctx.runtime.start_pod(launch, self._append_log)
        except ImageNotPresent as missing:
            spec = self._pod.get("spec") or {}
            image = str(missing)
            every = [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]
            await self._fail_pull([c for c in every if c["image"] == image])
            return
        self._sandbox = sandbox
        self._record = self._record_with(sandbox_ready=True, pod_ip=NODE_IP)
        for name, exit in sandbox.init_exits.items():
            image = next(c.image for c in self._record.init_containers if c.name == name)
            ended = ContainerRecord(name, image, _terminated(exit))
            self._record = self._record.with_init_container(ended)
            if exit.exit_code != 0:
                self._event("Failed", f"Error: init container {name} exited {exit.exit_code}")
        waits: dict[asyncio.Future[ContainerExit], str] = {}
        for name, container in sandbox.containers.items():
            image = self._image_of(name)
            if isinstance(container, FailedStart):
                state: Running | Terminated = _terminated(container.exit)
                self._event("Failed", f"Error: {container.exit.message}", warning=True)
            else:
                state = Running(container.started_at)
                waits[asyncio.ensure_future(container.wait())] = name
                self._event("Created", f"Created container: {name}")
                self._event("Started", f"Started container {name}")
            record = ContainerRecord(name, image, state, container.container_id)
            self._record = self._record.with_container(record)
        self._publish()
        await self._supervise(sandbox, waits)

    async def _supervise(
        self, sandbox: PodSandbox, waits: dict[asyncio.Future[ContainerExit], str]
    ) -> None:
        stop = asyncio.ensure_future(self._stop.wait())
        try:
            while waits and not stop.done():
                pending: list[asyncio.Future[Any]] = [*waits, stop]
                done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for future in [f for f in done if f in waits]:
                    self._container_ended(waits.pop(future), future.result())
            if not waits or self._gone:
                return
            if self._deadline_hit and not self._deleting:
                self._event("DeadlineExceeded", DEADLINE_MESSAGE, warning=True)
                self._record = self._record_with(
                    failed_reason=DEADLINE_EXCEEDED, failed_message=DEADLINE_MESSAGE
                )
                self._publish()
            for name in waits.values():
                self._event("Killing", f"Stopping container {name}")
            await sandbox.stop(self._grace)
            for future, name in waits.items():
                self._container_ended(name, await future)
        finally:
            stop.cancel()

    def _container_ended(self, name: str, exit: ContainerExit) -> None:
        current = next(c for c in self._record.containers if c.name == name)
        started = current.state.started_at if isinstance(current.state, Running) else None
        record = ContainerRecord(
            name, current.image, _terminated(exit, started), current.container_id
        )
        self._record = self._record.with_container(record)
        self._publish()

    def _finish(self) -> None:
        """Write the terminal status: deadline reason, never-started containers unknown."""
        if self._gone:
            return
        if self._deadline_hit and not self._record.failed_reason:
            self._record = self._record_with(
                failed_reason=DEADLINE_EXCEEDED, failed_message=DEADLINE_MESSAGE
            )
        if self._stop.is_set():
            for container in self._record.containers:
                if isinstance(container.state, Waiting):
                    unknown = Terminated(
                        exit_code=137,
                        reason=STATUS_UNKNOWN,
                        finished_at=_now(),
                        message=STATUS_UNKNOWN_MESSAGE,
                    )
                    self._record = self._record.with_container(
                        ContainerRecord(container.name, container.image, unknown)
                    )
        self._publish()

    # --- helpers --------------------------------------------------------------------------

    def _record_with(self, **changes: Any) -> PodRecord:
        return replace(self._record, **changes)

    def _image_of(self, name: str) -> str:
        return next(c.image for c in self._record.containers if c.name == name)

    def _publish(self) -> None:
        if self._gone:
            raise PodGone(self.name)
        if self._record == self._published:
            return
        self._published = self._record
        status = pod_status(self._pod, self._record, _now())
        try:
            self._pod = self._ctx.store.update_pod_status(
                self.namespace, self.name, status, uid=self.uid
            )
        except ApiError as error:
            if error.code == 404:
                raise PodGone(self.name) from error
            raise

    def _append_log(self, container: str, data: bytes) -> None:
        if not self._gone:
            with contextlib.suppress(ApiError):
                self._ctx.store.append_pod_log(self.namespace, self.name, container, data)

    def _event(self, reason: str, message: str, *, warning: bool = False) -> None:
        self._ctx.record_event(self._pod, reason, message, warning=warning)


def _terminated(exit: ContainerExit, started_at: datetime | None = None) -> Terminated:
    return Terminated(
        exit_code=exit.exit_code,
        reason=exit.reason,
        finished_at=exit.finished_at,
        started_at=started_at or EPOCH,
        message=exit.message,
    )
