"""The job controller: carries out the lifecycle decisions of :mod:`hodei.server.lifecycle`.

Everything that starts, ends, retries or cancels a job comes through here: a submit
(provider choice, saving, metrics, waking the scheduler), a result from the
agent, a worker status from a provider, a cancel request, the supervisor's backstops.
Each step holds the job's lock, re-reads the job and checks the worker is still the
job's current one, so late or duplicate events (a GONE after a retry, a status after
the result) fall away instead of moving a job twice. After a job ends its worker is
deleted through its provider.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection, Mapping
from dataclasses import replace
from datetime import datetime

from hodei.api.messages import CancelJob, JobResult
from hodei.domain import reasons
from hodei.domain.clock import Clock
from hodei.domain.ids import JobId, WorkerId
from hodei.domain.jobs import Job, JobSpec
from hodei.domain.reasons import Failure
from hodei.domain.states import JobState
from hodei.domain.workers import WorkerPhase, WorkerRecord
from hodei.providers.base import Provider, ProviderError, WorkerStatus
from hodei.server import lifecycle
from hodei.server.jobs import JobBook
from hodei.server.loghub import LogHub
from hodei.server.metrics import Metrics
from hodei.server.tuning import Tuning
from hodei.server.wakeup import Wakeup
from hodei.server.workers import WorkerBook
from hodei.store.base import StoreError
from hodei.supervision import Background

log = logging.getLogger(__name__)

_FAILED_STATES = frozenset({JobState.FAILED, JobState.TIMED_OUT})


class NotAccepting(RuntimeError):
    """The control plane is draining and takes no new jobs."""


class UnknownProvider(ValueError):
    """A job names a provider that is not enabled; the message lists the accepted ones."""


def default_provider(names: Collection[str]) -> str | None:
    """The provider for jobs that name none: ``kubernetes`` when it is enabled, else the
    first enabled one (``local``); None when no provider is enabled."""
    if "kubernetes" in names:
        return "kubernetes"
    return next(iter(names), None)


class JobController:
    """Ends, retries and cancels jobs; reacts to results and worker statuses."""

    def __init__(
        self,
        *,
        jobs: JobBook,
        workers: WorkerBook,
        providers: Mapping[str, Provider],
        hub: LogHub,
        metrics: Metrics,
        background: Background,
        tuning: Tuning,
        dispatch: Wakeup,
        clock: Clock,
        platform_retries: int = 5,
    ) -> None:
        self._clock = clock
        self._jobs = jobs
        self._workers = workers
        self._providers = providers
        self._hub = hub
        self._metrics = metrics
        self._background = background
        self._tuning = tuning
        self._dispatch = dispatch
        self._default_provider = default_provider(list(providers))
        self.accepting = True  # False while draining: submits are refused
        self._platform_retries = platform_retries
        self._releases: set[asyncio.Task[None]] = set()
        self._held_statuses: dict[WorkerId, WorkerStatus] = {}
        self._hurry = asyncio.Event()  # set on stop: delete without waiting for agents

    async def submit(self, spec: JobSpec) -> Job:
        """Record a new QUEUED job for a validated spec and wake the scheduler.

        Raises :class:`NotAccepting` while draining, :class:`UnknownProvider` when the
        spec names a provider that is not enabled (or none is), and SpecError when the
        provider cannot run it (``Provider.check_spec``: an unknown profile, a Secret
        reference on the local provider)."""
        if not self.accepting:
            raise NotAccepting("the control plane is shutting down; submit later")
        provider = spec.provider or self._default_provider
        if provider is None or provider not in self._providers:
            accepted = ", ".join(self._providers) or "none (no provider is enabled)"
            raise UnknownProvider(
                f"provider {provider!r} is unknown or disabled; accepted: {accepted}"
            )
        self._providers[provider].check_spec(spec)
        job = await self._jobs.submit(spec, provider=provider)
        self._metrics.jobs_submitted.inc()
        self._dispatch.set()
        return job

    async def _current(self, job_id: JobId, worker_id: WorkerId | None) -> Job | None:
        """The unfinished job, if ``worker_id`` (when given) is still its worker."""
        job = await self._jobs.get(job_id)
        if job is None or job.state.terminal:
            return None
        if worker_id is not None and job.worker_id != worker_id:
            return None
        return job

    async def registered(self, record: WorkerRecord) -> None:
        """The worker's agent registered for the first time: note the start latency."""
        now = self._clock.now()
        await self._workers.save(record.updated(registered_at=now))
        self._metrics.worker_start_latency.labels(record.provider).observe(
            (now - record.created_at).total_seconds()
        )

    async def started(self, job_id: JobId, worker_id: WorkerId) -> None:
        """The agent started the job's process: STARTING -> RUNNING."""
        async with self._jobs.lock(job_id):
            job = await self._current(job_id, worker_id)
            if job is None or job.state is not JobState.STARTING:
                return
            now = self._clock.now()
            await self._jobs.save(job.moved_to(JobState.RUNNING, started_at=now))
            self._metrics.dispatch_latency.labels("RUNNING").observe(
                (now - job.created_at).total_seconds()
            )

    async def finish_with_result(self, worker_id: WorkerId, result: JobResult) -> None:
        """Record the agent's result (once; a re-sent result changes nothing)."""
        async with self._jobs.lock(result.job_id):
            job = await self._current(result.job_id, worker_id)
            if job is None:
                return
            if job.state is JobState.STARTING and not result.error:
                # The result overtook JobStarted (or replaced it): the job did run.
                job = await self._jobs.save(
                    job.moved_to(JobState.RUNNING, started_at=self._clock.now())
                )
            if result.terminated and job.cancel_requested_at is None:
                # SIGTERM the control plane did not send: the platform took the worker.
                provider = self._providers.get(job.provider or "")
                status = provider.status(worker_id) if provider is not None else None
                await self._fail_locked(job, lifecycle.failure_of_termination(status))
                return
            outcome = lifecycle.outcome_of_result(
                exit_code=result.exit_code,
                timed_out=result.timed_out,
                # A cancel that was asked for stands even if the agent never heard of it.
                cancelled=result.cancelled or job.cancel_requested_at is not None,
                error=result.error,
                start_failure=result.start_failure,
                timeout=job.spec.timeout_seconds,
                oom_killed=result.oom_killed,
                memory_limit=job.spec.resources.memory_limit,
            )
            await self._end(job, outcome, wait_for_agent=True)

    async def fail(self, job_id: JobId, failure: Failure, *, worker_id: WorkerId | None) -> None:
        """A platform failure of the job's worker: retry when allowed, else FAILED."""
        async with self._jobs.lock(job_id):
            job = await self._current(job_id, worker_id)
            if job is not None:
                await self._fail_locked(job, failure)

    async def _fail_locked(self, job: Job, failure: Failure) -> None:
        if job.cancel_requested_at is not None:  # a job being cancelled is not retried
            await self._end(job, lifecycle.CANCELLED_OUTCOME)
            return
        retries = self._platform_retries
        if not lifecycle.should_retry(job, failure, platform_retries=retries):
            failure = lifecycle.retries_exhausted(job, failure, platform_retries=retries)
            await self._end(job, lifecycle.failed_outcome(failure))
            return
        log.info("job %s: %s; retrying (attempt %d done)", job.id, failure, job.attempt)
        attempts = lifecycle.with_ended_attempt(
            job,
            reason=failure.reason,
            message=failure.message,
            at=self._clock.now(),
            disruption=failure.reason in reasons.DISRUPTION_REASONS,
        )
        await self._jobs.save(
            job.moved_to(
                JobState.QUEUED,
                worker_id=None,
                reason=failure.reason,
                message=f"retrying after attempt {job.attempt}: {failure.message}",
                attempts=attempts,
            )
        )
        self._metrics.job_retries.labels(failure.reason).inc()
        if job.worker_id is not None:
            self.release(job.worker_id, wait_for_agent=False)
        self._dispatch.set()

    async def end(self, job_id: JobId, outcome: lifecycle.Outcome) -> None:
        """End an unfinished job with ``outcome`` (backstops, lost workers)."""
        async with self._jobs.lock(job_id):
            job = await self._current(job_id, None)
            if job is not None:
                await self._end(job, outcome)

    async def _end(
        self, job: Job, outcome: lifecycle.Outcome, *, wait_for_agent: bool = False
    ) -> None:
        now = self._clock.now()
        ended = job.moved_to(
            outcome.state,
            exit_code=outcome.exit_code,
            reason=outcome.reason,
            message=outcome.message,
            finished_at=now,
            attempts=lifecycle.with_ended_attempt(
                job, reason=outcome.reason or reasons.COMPLETED, message=outcome.message, at=now
            ),
        )
        await self._jobs.save(ended)
        self._hub.close(job.id)
        if outcome.state in _FAILED_STATES:
            self._metrics.jobs_failed.labels(outcome.reason or "unknown").inc()
        if job.worker_id is not None:
            self.release(job.worker_id, wait_for_agent=wait_for_agent)

    def release(self, worker_id: WorkerId, *, wait_for_agent: bool) -> None:
        """Delete the worker through its provider, in the background."""
        task = self._background.spawn(
            self._release(worker_id, wait_for_agent),
            name=f"release-{worker_id}",
            kind="release-worker",
        )
        self._releases.add(task)
        task.add_done_callback(self._releases.discard)

    async def flush_releases(self) -> None:
        """Delete every worker still waiting for its agent to hang up, now (on stop)."""
        self._hurry.set()
        if self._releases:
            await asyncio.wait(list(self._releases))

    async def _release(self, worker_id: WorkerId, wait_for_agent: bool) -> None:
        if wait_for_agent and not self._hurry.is_set():
            # Let the agent read its ResultAck and hang up first.
            hang_up = asyncio.ensure_future(self._workers.wait_disconnected(worker_id))
            hurry = asyncio.ensure_future(self._hurry.wait())
            try:
                await asyncio.wait(
                    {hang_up, hurry},
                    timeout=self._tuning.release_wait,
                    return_when=asyncio.FIRST_COMPLETED,
                )
            finally:
                hang_up.cancel()
                hurry.cancel()
        record = await self._workers.fetch(worker_id)
        if record is None:
            return
        provider = self._providers.get(record.provider)
        if provider is not None:
            try:
                await provider.delete_worker(worker_id)
            except ProviderError as exc:
                log.warning("could not delete worker %s: %s", worker_id, exc)
        current = self._workers.get(worker_id)
        if current is not None:
            await self._workers.save(current.updated(state=WorkerPhase.GONE))
        self._dispatch.set()

    def cancels(self) -> dict[JobId, datetime]:
        """Unfinished jobs whose agent was asked to cancel, with when it was asked."""
        return {
            job.id: job.cancel_requested_at
            for job in self._jobs.active()
            if job.cancel_requested_at is not None
        }

    async def cancel(self, job_id: JobId) -> Job | None:
        """Cancel the job: a QUEUED one ends CANCELLED at once, a STARTING one too (its
        worker is deleted), a RUNNING one's agent is told to kill the process group, the
        request saved first so a restart still enforces it; a finished job is left as it
        is (:func:`lifecycle.cancel_action`). Returns the job after the request, None
        when it is unknown."""
        async with self._jobs.lock(job_id):
            job = await self._jobs.get(job_id)
            if job is None:
                return None
            action = lifecycle.cancel_action(job.state)
            if action is lifecycle.CancelAction.NONE:
                return job
            worker_id = job.worker_id
            signal = action is lifecycle.CancelAction.SIGNAL_AGENT and worker_id is not None
            if signal and worker_id and self._workers.connected(worker_id):
                # Stored before the agent is told and before the caller hears back: if
                # the message is lost and the control plane restarts, recovery ends it.
                if job.cancel_requested_at is None:
                    job = await self._jobs.save(replace(job, cancel_requested_at=self._clock.now()))
                self._workers.send(worker_id, CancelJob(job.id))
                return job
            await self._end(job, lifecycle.CANCELLED_OUTCOME)
            return await self._jobs.get(job_id)

    async def on_status(self, status: WorkerStatus) -> None:
        """A provider's status update (the provider listener).

        One the store cannot record now is kept (the latest per worker) and applied again
        by :meth:`apply_held_statuses`, so a store fault neither loses a worker's failure
        nor makes the provider report it over and over."""
        try:
            await self._apply_status(status)
        except StoreError:
            self._held_statuses[status.worker_id] = status  # the store's watch logged it

    async def apply_held_statuses(self) -> None:
        """Apply the statuses a store fault held back (the supervisor calls this)."""
        held, self._held_statuses = self._held_statuses, {}
        for status in held.values():
            await self.on_status(status)

    async def _apply_status(self, status: WorkerStatus) -> None:
        self._held_statuses.pop(status.worker_id, None)  # a newer status supersedes it
        record = self._workers.get(status.worker_id)
        if record is None:
            return
        changed = record.updated(
            state=status.phase,
            name=status.name or record.name,
            reason=status.reason,
            message=status.message,
        )
        if changed != record:
            await self._workers.save(changed)
            if not changed.active:
                self._dispatch.set()
        async with self._jobs.lock(record.job_id):
            job = await self._current(record.job_id, record.id)
            if job is None:
                return
            waiting = lifecycle.waiting_reason_of_status(status)
            moved = lifecycle.state_for_status(job.state, status)
            if moved is not None:
                job = await self._jobs.save(job.moved_to(moved, waiting_reason=waiting))
            if waiting is not None:
                await self._jobs.set_waiting(job.id, waiting)
            elif status.phase is WorkerPhase.RUNNING and job.state is JobState.STARTING:
                await self._jobs.set_waiting(job.id, lifecycle.AGENT_STARTING)
            failure = lifecycle.failure_of_status(status)
            if failure is not None:
                await self._fail_locked(job, failure)
