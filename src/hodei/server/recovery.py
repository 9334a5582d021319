"""Picking up after a restart (or a crash) from what the store and the providers say.

Unfinished jobs are read back. For each provider, the workers it still has are compared
with the store: a worker whose job is finished, unknown or now served by another worker
is deleted (nothing is left behind). A STARTING/RUNNING job whose worker the provider no
longer has is lost (retried or FAILED: WorkerLost) at once; one whose worker still exists
keeps it, and its agent gets the reconnect grace period to come back with its resume
token before the supervisor declares it lost. QUEUED jobs simply dispatch again. A job
whose cancel was requested before the restart ends CANCELLED and its worker is deleted.

:func:`sweep_strays` repeats the stray deletion periodically while the control plane runs,
for workers whose normal release failed or that a crash left between create and record.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta

from hodei.domain.ids import WorkerId
from hodei.domain.jobs import Job
from hodei.domain.reasons import WORKER_LOST, Failure
from hodei.domain.states import JobState
from hodei.domain.workers import WorkerPhase
from hodei.providers.base import Provider, ProviderError, WorkerStatus
from hodei.server import lifecycle
from hodei.server.controller import JobController
from hodei.server.jobs import JobBook
from hodei.server.workers import WorkerBook

log = logging.getLogger(__name__)


async def _listed(providers: Mapping[str, Provider]) -> dict[str, list[WorkerStatus] | None]:
    listed: dict[str, list[WorkerStatus] | None] = {}
    for name, provider in providers.items():
        try:
            listed[name] = await provider.list_workers()
        except ProviderError as exc:
            log.warning("cannot list %s workers to reconcile: %s", name, exc)
            listed[name] = None  # unknown: leave its jobs to the grace period
    return listed


async def _delete_strays(
    provider: Provider, statuses: list[WorkerStatus], wanted: set[WorkerId]
) -> None:
    for status in statuses:
        if status.worker_id in wanted:
            continue
        log.info("deleting stray %s worker %s", provider.name, status.worker_id)
        try:
            await provider.delete_worker(status.worker_id)
        except ProviderError as exc:
            log.warning("could not delete stray worker %s: %s", status.worker_id, exc)


def _current_workers(jobs: list[Job]) -> set[WorkerId]:
    return {
        job.worker_id
        for job in jobs
        if job.worker_id is not None and job.state in (JobState.STARTING, JobState.RUNNING)
    }


async def recover(
    *,
    jobs: JobBook,
    workers: WorkerBook,
    controller: JobController,
    providers: Mapping[str, Provider],
    now: datetime,
) -> None:
    """Load state, reconcile every provider's workers and settle every unfinished job;
    ``now`` starts the reconnect grace of workers that still exist."""
    active = await jobs.load()
    await workers.load()
    wanted = _current_workers(active)
    for orphan in workers.active():
        if orphan.id not in wanted:  # its job ended or never started before the stop
            await workers.save(orphan.updated(state=WorkerPhase.GONE))
    listed = await _listed(providers)
    for name, statuses in listed.items():
        if statuses is not None:
            await _delete_strays(providers[name], statuses, wanted)
    alive = {
        status.worker_id
        for statuses in listed.values()
        for status in statuses or ()
        if status.phase in (WorkerPhase.PENDING, WorkerPhase.RUNNING)
    }
    for job in active:
        if job.cancel_requested_at is not None:
            # Cancelled before the restart; its agent may never have heard: end it now
            # (its worker is deleted) rather than let it run to completion.
            await controller.end(job.id, lifecycle.CANCELLED_OUTCOME)
            continue
        if job.state is JobState.QUEUED and job.worker_id is not None:
            # It was waiting for quota to create its pod; that create died with the
            # process. Queue it afresh: the scheduler gives it a new worker.
            async with jobs.lock(job.id):
                fresh = replace(job, worker_id=None, attempt=job.attempt - 1, waiting_reason=None)
                await jobs.save(fresh)
            continue
        if job.worker_id is None or job.worker_id not in wanted:
            continue
        record = workers.get(job.worker_id)
        known = record is not None and listed.get(record.provider) is not None
        if record is not None and (job.worker_id in alive or not known):
            workers.mark_disconnected(job.worker_id, now)
            continue
        await controller.fail(
            job.id,
            Failure(WORKER_LOST, "the control plane restarted and the worker no longer exists"),
            worker_id=job.worker_id,
        )


async def sweep_strays(
    *, jobs: JobBook, providers: Mapping[str, Provider], settle: timedelta, now: datetime
) -> list[WorkerId]:
    """Delete workers whose job is unknown, or finished more than ``settle`` ago; return them.

    Workers of unfinished jobs are kept, even a retried job's old worker (its release is
    under way), and so are those of jobs that just ended: their release is still running.
    """
    wanted = _current_workers(jobs.active())
    cutoff = now - settle
    swept: list[WorkerId] = []
    for name, statuses in (await _listed(providers)).items():
        for status in statuses or ():
            if status.worker_id in wanted or status.phase is WorkerPhase.GONE:
                continue
            job = await jobs.get(status.job_id) if status.job_id is not None else None
            if job is not None and not (
                job.state.terminal and job.finished_at is not None and job.finished_at < cutoff
            ):
                continue
            await _delete_strays(providers[name], [status], wanted)
            swept.append(status.worker_id)
    return swept
