"""Periodic checks that keep jobs from getting stuck when an expected event never comes.

A periodic sweep deletes workers whose job is finished or unknown. Three backstops: a
RUNNING job past its timeout plus a grace period without a result ends TIMED_OUT; a
cancelled RUNNING job whose agent never reports ends CANCELLED; a registered agent that
stays disconnected past the reconnect grace (including every worker of a job recovered
after a restart) loses its job to WorkerLost, which retries or fails it. A worker the
provider still reports as PENDING is not lost: it never connected yet and the provider
will say when it fails.
"""

from __future__ import annotations

from collections.abc import Mapping

from hodei.domain.clock import Clock
from hodei.domain.reasons import WORKER_LOST, Failure
from hodei.domain.states import JobState
from hodei.domain.workers import WorkerPhase
from hodei.providers.base import Provider
from hodei.server import lifecycle
from hodei.server.controller import JobController
from hodei.server.jobs import JobBook
from hodei.server.recovery import sweep_strays
from hodei.server.tuning import Tuning
from hodei.server.workers import WorkerBook


class Supervisor:
    """Runs :meth:`check` every ``tuning.tick`` seconds."""

    def __init__(
        self,
        *,
        jobs: JobBook,
        workers: WorkerBook,
        controller: JobController,
        providers: Mapping[str, Provider],
        tuning: Tuning,
        clock: Clock,
    ) -> None:
        self._clock = clock
        self._jobs = jobs
        self._workers = workers
        self._controller = controller
        self._providers = providers
        self._tuning = tuning

    async def run(self) -> None:
        last_sweep = self._clock.now()
        while True:
            await self._clock.sleep(self._tuning.tick)
            await self.check()
            if self._clock.now() - last_sweep >= self._tuning.sweep_interval:
                last_sweep = self._clock.now()
                await self.sweep()

    async def sweep(self) -> None:
        """Delete workers whose job is finished or unknown (see :func:`sweep_strays`)."""
        await sweep_strays(
            jobs=self._jobs,
            providers=self._providers,
            settle=self._tuning.sweep_interval,
            now=self._clock.now(),
        )

    async def check(self) -> None:
        """One round of all backstops."""
        await self._controller.apply_held_statuses()
        now = self._clock.now()
        grace = self._tuning.timeout_backstop
        for job in self._jobs.active():
            if lifecycle.backstop_due(job, now, grace=grace):
                await self._controller.end(job.id, lifecycle.backstop_outcome(job, grace=grace))
        cancels = self._controller.cancels()
        for job_id in lifecycle.overdue(cancels, now, self._tuning.cancel_grace):
            await self._controller.end(job_id, lifecycle.CANCELLED_OUTCOME)
        for worker_id in lifecycle.overdue(
            self._workers.disconnected(), now, self._tuning.reconnect_grace
        ):
            record = self._workers.get(worker_id)
            if record is None:
                continue
            provider = self._providers.get(record.provider)
            status = provider.status(worker_id) if provider is not None else None
            if status is not None and status.phase is WorkerPhase.PENDING:
                continue
            current = await self._jobs.get(record.job_id)
            if current is None or current.state not in (JobState.STARTING, JobState.RUNNING):
                continue
            seconds = self._tuning.reconnect_grace.total_seconds()
            await self._controller.fail(
                record.job_id,
                Failure(WORKER_LOST, f"the worker's agent did not reconnect within {seconds:g}s"),
                worker_id=worker_id,
            )
