"""An in-memory provider for control-plane tests: workers are whatever the test says.

Creating a worker records the request and calls an optional ``on_create`` hook, which
a test uses to run a scripted agent (for example a coroutine speaking WorkerService over
real gRPC); deleting it cancels that coroutine, as killing a process would, and pushes
GONE. Tests push any other status (PENDING with a diagnosis, FAILED, EXITED) with
:meth:`FakeProvider.push`, and can make creation or health fail.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from hodei.domain.ids import WorkerId
from hodei.domain.jobs import JobSpec, SpecError
from hodei.providers.base import (
    ANYWHERE,
    Health,
    Origin,
    StatusListener,
    WorkerPhase,
    WorkerRequest,
    WorkerStatus,
)

OnCreate = Callable[[WorkerRequest], Awaitable[Any] | None]


class FakeProvider:
    """Implements :class:`hodei.providers.base.Provider` in memory."""

    def __init__(
        self,
        name: str = "local",
        *,
        capacity: int | None = None,
        on_create: OnCreate | None = None,
    ) -> None:
        self._name = name
        self._capacity = capacity
        self.on_create = on_create
        self.requests: list[WorkerRequest] = []
        self.deleted: list[WorkerId] = []
        self.create_error: Exception | None = None  # raised by every create while set
        self.health_result = Health(True)
        self.spec_error: SpecError | None = None  # raised by check_spec when set
        self.failures: list[BaseException] = []  # exceptions raised by on_create coroutines
        self.origins: dict[WorkerId, Origin] = {}  # where agents may connect from
        self.started = False
        self.closed = False
        self._listener: StatusListener | None = None
        self._statuses: dict[WorkerId, WorkerStatus] = {}
        self._tasks: dict[WorkerId, asyncio.Task[Any]] = {}

    @property
    def name(self) -> str:
        return self._name

    @property
    def capacity(self) -> int | None:
        return self._capacity

    def check_spec(self, spec: JobSpec) -> None:
        if self.spec_error is not None:
            raise self.spec_error

    async def start(self, listener: StatusListener) -> None:
        self._listener = listener
        self.started = True

    async def close(self) -> None:
        self.closed = True

    async def create_worker(self, request: WorkerRequest) -> WorkerStatus:
        if request.worker_id in self._statuses:
            return self._statuses[request.worker_id]
        if self.create_error is not None:
            raise self.create_error
        self.requests.append(request)
        status = WorkerStatus(
            request.worker_id, request.job_id, WorkerPhase.PENDING, name=f"fake-{request.worker_id}"
        )
        self._statuses[request.worker_id] = status
        if self.on_create is not None:
            result = self.on_create(request)
            if asyncio.iscoroutine(result):
                task = asyncio.ensure_future(result)
                task.add_done_callback(self._collect)
                self._tasks[request.worker_id] = task
        return status

    def _collect(self, task: asyncio.Task[Any]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self.failures.append(task.exception())  # type: ignore[arg-type]

    async def delete_worker(self, worker_id: WorkerId) -> None:
        self.deleted.append(worker_id)
        task = self._tasks.pop(worker_id, None)
        if task is not None and not task.done():
            task.cancel()
        status = self._statuses.get(worker_id)
        if status is not None and status.phase is not WorkerPhase.GONE:
            await self.push(
                WorkerStatus(worker_id, status.job_id, WorkerPhase.GONE, name=status.name)
            )

    async def origin(self, worker_id: WorkerId, *, wait: float) -> Origin:
        """``origins[worker_id]`` when a test set one, else not bound to an address."""
        return self.origins.get(worker_id, ANYWHERE)

    def status(self, worker_id: WorkerId) -> WorkerStatus | None:
        return self._statuses.get(worker_id)

    async def list_workers(self) -> list[WorkerStatus]:
        return [s for s in self._statuses.values() if s.phase is not WorkerPhase.GONE]

    async def health(self) -> Health:
        return self.health_result

    async def push(self, status: WorkerStatus) -> None:
        """Record ``status`` and hand it to the control plane's listener."""
        self._statuses[status.worker_id] = status
        if self._listener is not None:
            await self._listener(status)

    def adopt(self, status: WorkerStatus) -> None:
        """Know a worker without creating it (one left over from an earlier run)."""
        self._statuses[status.worker_id] = status

    async def aclose_workers(self) -> None:
        """Cancel every scripted worker still running (test teardown)."""
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
