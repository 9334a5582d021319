"""The scheduler: hands queued jobs to providers, first come first served, within capacity.

Each job gets a fresh worker. A provider with a cap (``capacity``) takes no more jobs
while that many of its workers are alive; the rest wait QUEUED, and the scheduler wakes
whenever capacity may have freed up (a worker deleted or gone) or a job arrives. Which
jobs go now is a pure function of the queue and the counts (:func:`plan_dispatch`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence

from hodei.domain.clock import Clock
from hodei.domain.ids import WorkerId
from hodei.domain.jobs import Job
from hodei.domain.reasons import PROVIDER_ERROR, Failure
from hodei.domain.states import JobState
from hodei.domain.workers import WorkerRecord
from hodei.providers.base import AgentCertificate, Provider, ProviderError, WorkerRequest
from hodei.server import lifecycle
from hodei.server.controller import JobController
from hodei.server.jobs import JobBook
from hodei.server.metrics import Metrics
from hodei.server.wakeup import Wakeup
from hodei.server.workers import WorkerBook
from hodei.store.base import LogStore
from hodei.supervision import Background

log = logging.getLogger(__name__)


def plan_dispatch(
    queued: Sequence[Job],
    *,
    active: Mapping[str, int],
    capacity: Mapping[str, int | None],
) -> list[Job]:
    """The queued jobs to dispatch now, in queue order.

    A job goes when its provider has a free slot. A full provider holds back only its
    own jobs, so FIFO holds per provider and one busy provider cannot starve another.
    """
    free = {
        name: None if cap is None else max(cap - active.get(name, 0), 0)
        for name, cap in capacity.items()
    }
    chosen = []
    for job in queued:
        name = job.provider or ""
        if name not in free:
            continue
        slots = free[name]
        if slots is None:
            chosen.append(job)
        elif slots > 0:
            free[name] = slots - 1
            chosen.append(job)
    return chosen


class Scheduler:
    """Dispatch loop: wakes on ``dispatch``, starts the jobs :func:`plan_dispatch` picks."""

    def __init__(
        self,
        *,
        jobs: JobBook,
        workers: WorkerBook,
        providers: Mapping[str, Provider],
        controller: JobController,
        logs: LogStore,
        metrics: Metrics,
        background: Background,
        dispatch: Wakeup,
        clock: Clock,
        server_address: str,
        server_socket: str | None = None,
        issue_certificate: Callable[[WorkerId], AgentCertificate] | None = None,
    ) -> None:
        """``server_socket``: the Unix socket agents on this host may dial instead
        (:mod:`hodei.server.worker_socket`); ``issue_certificate``: each worker's client
        certificate, when the control plane requires them (mTLS; see
        :mod:`hodei.server.worker_ca`)."""
        self._issue_certificate = issue_certificate
        self._jobs = jobs
        self._workers = workers
        self._providers = providers
        self._controller = controller
        self._logs = logs
        self._metrics = metrics
        self._background = background
        self._server_address = server_address
        self._server_socket = server_socket
        self._wakeup = dispatch
        self._clock = clock
        self.paused = False

    async def run(self) -> None:
        """Dispatch on every wakeup, for good; a (re)started loop first looks at once,
        so jobs queued while it was down (or the store was failing) are not forgotten."""
        self._wakeup.set()
        while True:
            await self._wakeup.wait()
            if self.paused:
                continue
            # A queued job that has a worker waits for its pod's create (quota).
            queued = [job for job in self._jobs.queued() if job.worker_id is None]
            capacity = {name: p.capacity for name, p in self._providers.items()}
            plan = plan_dispatch(queued, active=self._workers.active_counts(), capacity=capacity)
            for job in plan:
                await self._dispatch(job)
            chosen = {job.id for job in plan}
            for job in queued:
                # One that already says why it waits keeps it (see _hold): skipped here
                # without taking its lock, as a burst of queued jobs wakes this often.
                if job.id not in chosen and job.provider in capacity and not job.waiting_reason:
                    reason = lifecycle.slot_waiting_reason(job.provider, capacity[job.provider])
                    await self._hold(job, reason)

    async def _hold(self, queued: Job, reason: str) -> None:
        async with self._jobs.lock(queued.id):
            job = await self._jobs.get(queued.id)
            # A job that stopped waiting meanwhile (cancelled), or waits for something a
            # provider reported (quota), keeps its state and reason.
            if job is not None and job.state is JobState.QUEUED and not job.waiting_reason:
                await self._jobs.set_waiting(job.id, reason)

    async def _dispatch(self, queued: Job) -> None:
        provider = self._providers[queued.provider or ""]
        async with self._jobs.lock(queued.id):
            job = await self._jobs.get(queued.id)
            if job is None or job.state is not JobState.QUEUED:
                return
            offset = await self._logs.last_log_sequence(job.id)
            record, token = await self._workers.create(
                job, provider=provider.name, log_offset=offset
            )
            job = await self._jobs.save(
                job.moved_to(
                    JobState.STARTING,
                    attempt=record.attempt,
                    worker_id=record.id,
                    reason=None,
                    message=None,
                    waiting_reason=lifecycle.CREATING_WORKER,
                )
            )
            self._metrics.dispatch_latency.labels("STARTING").observe(
                (self._clock.now() - job.created_at).total_seconds()
            )

        # Creating can be slow (an API call, a process spawn): do it beside the loop.
        async def failed(error: BaseException) -> None:
            message = f"creating the worker failed: {type(error).__name__}: {error}"
            await self._controller.fail(
                job.id, Failure(PROVIDER_ERROR, message), worker_id=record.id
            )

        self._background.spawn(
            self._create(provider, job, record, token),
            name=f"create-{record.id}",
            kind="create-worker",
            on_failure=failed,
        )

    async def _create(self, provider: Provider, job: Job, record: WorkerRecord, token: str) -> None:
        request = WorkerRequest(
            worker_id=record.id,
            job_id=job.id,
            token=token,
            server_address=self._server_address,
            server_socket=self._server_socket,
            image=job.spec.image,
            resources=job.spec.resources,
            timeout_seconds=job.spec.timeout_seconds,
            labels=job.spec.labels,
            profile=job.spec.profile,
            secret_env=job.spec.secret_env,
            agent_certificate=(
                self._issue_certificate(record.id) if self._issue_certificate else None
            ),
        )
        try:
            status = await provider.create_worker(request)
        except ProviderError as exc:
            log.warning("job %s: %s could not create worker: %s", job.id, provider.name, exc)
            await self._controller.fail(
                job.id, Failure(exc.reason or PROVIDER_ERROR, str(exc)), worker_id=record.id
            )
            return
        if self._workers.get(record.id) is None:
            # Released (cancelled, failed) while the provider was still creating it: a
            # delete that ran before the create finished may have found nothing.
            await provider.delete_worker(record.id)
            return
        await self._controller.on_status(status)
