"""The job book: every job state change goes through here, persisted before it is seen.

Unfinished jobs are also kept in memory (in submission order, which is the scheduler's
FIFO), each with a lock: the worker stream, the provider's status listener, cancel and
the timeout backstop all may want to move the same job at once, and the lock makes each
read-decide-write step atomic. A finished job leaves memory and lives on in the store.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Mapping

from hodei.domain.clock import SYSTEM_CLOCK, Clock
from hodei.domain.ids import JobId, new_job_id
from hodei.domain.jobs import Job, JobSpec
from hodei.domain.states import TERMINAL_STATES, JobState
from hodei.server.events import JobEvents
from hodei.store.base import JobStore


class JobBook:
    """Jobs in the store, unfinished ones also in memory, with change notifications."""

    def __init__(self, store: JobStore, events: JobEvents, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self._store = store
        self.clock = clock
        self._events = events
        self._active: dict[JobId, Job] = {}
        self._locks: dict[JobId, asyncio.Lock] = {}
        self._counts: Counter[JobState] = Counter()
        self._idle = asyncio.Event()
        self._idle.set()

    async def load(self) -> list[Job]:
        """Read unfinished jobs (after a restart); returns them oldest first."""
        self._counts = Counter(await self._store.count_jobs())
        states = [s for s in JobState if s not in TERMINAL_STATES]
        jobs = await self._store.list_jobs(states=states, oldest_first=True)
        self._active = {job.id: job for job in jobs}
        self._update_idle()
        return jobs

    async def submit(self, spec: JobSpec, *, provider: str) -> Job:
        """Record a new QUEUED job for an already validated spec."""
        job = Job(
            id=new_job_id(),
            spec=spec,
            state=JobState.QUEUED,
            created_at=self.clock.now(),
            provider=provider,
        )
        await self._store.save_job(job)
        self._active[job.id] = job
        self._counts[job.state] += 1
        self._events.publish(job)
        return job

    def lock(self, job_id: JobId) -> asyncio.Lock:
        """The lock to hold around a read-decide-save step on ``job_id``.

        Finished (or unknown) jobs never change again, so they get a throwaway lock
        instead of an entry that would stay in memory forever."""
        if job_id not in self._active:
            return asyncio.Lock()
        return self._locks.setdefault(job_id, asyncio.Lock())

    async def get(self, job_id: JobId) -> Job | None:
        job = self._active.get(job_id)
        return job if job is not None else await self._store.get_job(job_id)

    async def save(self, job: Job) -> Job:
        """Persist a changed job, then update memory and notify watchers."""
        previous = self._active.get(job.id)
        await self._store.save_job(job)
        if previous is not None:
            self._counts[previous.state] -= 1
        self._counts[job.state] += 1
        if job.state.terminal:
            self._active.pop(job.id, None)
            self._locks.pop(job.id, None)
        else:
            self._active[job.id] = job
        self._update_idle()
        self._events.publish(job)
        return job

    def _update_idle(self) -> None:
        if any(job.state is not JobState.QUEUED for job in self._active.values()):
            self._idle.clear()
        else:
            self._idle.set()

    async def wait_idle(self) -> None:
        """Return when no job is STARTING or RUNNING (queued ones may remain)."""
        await self._idle.wait()

    async def set_waiting(self, job_id: JobId, reason: str | None) -> None:
        """Persist why an unfinished job still waits (:attr:`Job.waiting_reason`);
        watchers see each new reason. Call with the job's lock held."""
        job = self._active.get(job_id)
        if job is None or job.waiting_reason == (reason or None):
            return
        await self.save(job.waiting(reason))

    def active(self) -> list[Job]:
        """Unfinished jobs in submission order."""
        return list(self._active.values())

    def queued(self) -> list[Job]:
        return [job for job in self._active.values() if job.state is JobState.QUEUED]

    def counts(self) -> dict[JobState, int]:
        return dict(self._counts)

    def queue_depth(self) -> int:
        return sum(1 for job in self._active.values() if job.state is JobState.QUEUED)

    async def list(
        self,
        *,
        states: list[JobState] | None,
        limit: int,
        labels: Mapping[str, str] | None = None,
        after: JobId | None = None,
    ) -> list[Job]:
        """Newest first; see :meth:`hodei.store.base.Store.list_jobs` for the filters."""
        return await self._store.list_jobs(
            states=states or None, labels=labels or None, limit=limit, after=after
        )
