"""Relaying a client's stdin and terminal resizes to the agent that runs its job.

``hodei run -i``/``-t`` opens one ``SendInput`` stream per job. Input may arrive before
the job has a worker (the user types ahead, or pipes a file in at once), so the relay
holds the stream, without reading further, until the job runs and its agent is
connected; then it forwards each item in order. Reading the client's stream only as fast
as the agent's queue drains is the flow control: a large file piped into a job never
piles up in the control plane's memory. Once the job has ended, the rest is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from hodei.domain.ids import JobId, WorkerId
from hodei.domain.jobs import Job
from hodei.domain.states import JobState
from hodei.domain.stdio import JobInput
from hodei.server.events import JobEvents
from hodei.server.jobs import JobBook
from hodei.server.workers import WorkerBook

__all__ = ["InputRefused", "InputRelay"]

MAX_BACKLOG = 64  # messages queued for one agent before the relay stops reading
RECHECK = 0.05  # seconds between looks at a reconnecting agent or a draining queue


class InputRefused(Exception):
    """The stream cannot be accepted; ``code`` is the gRPC status name to end it with."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class InputRelay:
    """Forwards :class:`JobInput` streams from clients to their jobs' agents."""

    def __init__(
        self,
        *,
        jobs: JobBook,
        workers: WorkerBook,
        events: JobEvents,
        max_backlog: int = MAX_BACKLOG,
    ) -> None:
        self._jobs = jobs
        self._workers = workers
        self._events = events
        self._max_backlog = max_backlog

    async def relay(self, items: AsyncIterator[JobInput]) -> None:
        """Deliver every item of one client's stream; raises :class:`InputRefused`."""
        job: Job | None = None
        worker: WorkerId | None = None
        async for item in items:
            if job is None:
                job = await self._accept(item)
            elif item.job_id != job.id:
                raise InputRefused("INVALID_ARGUMENT", "every input message must name one job")
            if (item.data or item.eof) and not job.spec.stdin:
                raise InputRefused(
                    "FAILED_PRECONDITION",
                    f"job {job.id} was submitted without stdin (hodei run -i)",
                )
            worker = await self._deliver(job.id, worker, item)
            if worker is None:
                return  # the job has ended: nobody reads the rest

    async def _accept(self, item: JobInput) -> Job:
        job = await self._jobs.get(item.job_id) if item.job_id else None
        if job is None:
            raise InputRefused("NOT_FOUND", f"job {item.job_id!r} not found")
        if not (job.spec.stdin or job.spec.tty):
            raise InputRefused(
                "FAILED_PRECONDITION",
                f"job {job.id} takes no input: it was submitted without -i or -t",
            )
        return job

    async def _deliver(
        self, job_id: JobId, worker: WorkerId | None, item: JobInput
    ) -> WorkerId | None:
        """Send ``item`` to the job's agent once it can take it; None once the job ended."""
        while True:
            if worker is None or not self._workers.connected(worker):
                worker = await self._running_worker(job_id)
                if worker is None:
                    return None
            if self._workers.backlog(worker) >= self._max_backlog:
                await asyncio.sleep(RECHECK)  # the agent is behind: let its queue drain
                continue
            if self._workers.send(worker, item):
                return worker

    async def _running_worker(self, job_id: JobId) -> WorkerId | None:
        """The connected agent of the running job; None once the job has ended."""
        async with self._events.subscribe(job_id) as changes:
            while True:
                job = await self._jobs.get(job_id)
                if job is None or job.state.terminal:
                    return None
                if (
                    job.state is JobState.RUNNING
                    and job.worker_id is not None
                    and self._workers.connected(job.worker_id)
                ):
                    return job.worker_id
                # A state change wakes us at once; an agent reconnecting changes no state.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changes.get(), RECHECK)
