"""Pure decisions about a job's life: how a result or a worker status ends it, and
whether a platform failure earns another attempt.

The control plane's I/O code asks these functions what to do and then does it, so the
rules of a job's life — how a result maps to a final state, retrying platform failures
only, a provider's diagnosis winning over a generic WorkerLost, the timeout backstop,
what a cancel takes — live in one place and are tested without servers
(``docs/architecture.md`` summarises them).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from hodei.domain import exitcodes, reasons
from hodei.domain.jobs import Attempt, Job
from hodei.domain.reasons import Failure, Reason
from hodei.domain.states import JobState
from hodei.domain.workers import WorkerPhase
from hodei.providers.base import WorkerStatus

K = TypeVar("K")

# A RUNNING job this long past its timeout without a result is ended by the server.
TIMEOUT_BACKSTOP = timedelta(seconds=30)


@dataclass(frozen=True)
class Outcome:
    """The terminal state a job ends in, with what ``hodei jobs show`` displays."""

    state: JobState
    exit_code: int | None = None
    reason: reasons.Reason | None = None
    message: str | None = None


def outcome_of_result(
    *,
    exit_code: int,
    timed_out: bool,
    cancelled: bool,
    error: str,
    start_failure: reasons.StartFailure | None = None,
    timeout: float | None = None,
    oom_killed: bool = False,
    memory_limit: str | None = None,
) -> Outcome:
    """Map an agent's JobResult to the job's final state.

    A start error (``error`` set) FAILS the job with the reason its ``start_failure`` kind
    names (an agent that sent no kind counts as its own failure); an unrequested death the
    job container's cgroup counted as an OOM kill (``oom_killed``) is ``OOMKilled``, as the
    kubelet would name it, with the job's own ``memory_limit`` when it set one; else
    cancelled beats timed out beats the exit code (0 SUCCEEDED, other FAILED
    ``NonZeroExit``)."""
    if error:
        kind = start_failure or reasons.StartFailure.AGENT_ERROR
        code = exit_code or exitcodes.for_start_failure(kind)
        return Outcome(JobState.FAILED, code, kind.reason, error)
    if oom_killed and not cancelled and not timed_out:
        limit = f" (limit {memory_limit})" if memory_limit else ""
        return Outcome(
            JobState.FAILED,
            exit_code or exitcodes.OOM_KILLED,
            reasons.OOM_KILLED,
            f"the job was killed for exceeding its memory limit{limit}",
        )
    if cancelled:
        return Outcome(JobState.CANCELLED, exit_code, reasons.CANCELLED, "cancelled by request")
    if timed_out:
        limit = f" of {timeout:g}s" if timeout else ""
        return Outcome(
            JobState.TIMED_OUT,
            exit_code,
            reasons.DEADLINE_EXCEEDED,
            f"the job ran past its timeout{limit} and was killed",
        )
    if exit_code == 0:
        return Outcome(JobState.SUCCEEDED, 0)
    return Outcome(JobState.FAILED, exit_code, reasons.NON_ZERO_EXIT, f"exit code {exit_code}")


def failure_of_status(status: WorkerStatus) -> Failure | None:
    """The failure a worker status means for a job without a recorded result, if any."""
    if status.phase is WorkerPhase.FAILED:
        return Failure(status.reason or reasons.WORKER_LOST, status.message or "")
    if status.phase is WorkerPhase.EXITED:
        if status.reason:
            return Failure(status.reason, status.message or "", status.exit_code)
        code = "" if status.exit_code is None else f" with code {status.exit_code}"
        return Failure(reasons.WORKER_LOST, f"the worker exited{code} before reporting a result")
    if status.phase is WorkerPhase.GONE:
        return Failure(reasons.WORKER_LOST, "the worker disappeared before reporting a result")
    return None


# Why an unfinished job waits (Job.waiting_reason), as people read it. Every text the
# control plane puts there comes from this block.
CREATING_WORKER = "creating the worker"
AGENT_STARTING = "worker started; waiting for its agent"


def slot_waiting_reason(provider: str, capacity: int | None) -> str:
    """Why a queued job that the scheduler held back (its provider is full) still waits."""
    return f"waiting for a worker slot: all {capacity} {provider} workers are busy"


def waiting_reason_of_status(status: WorkerStatus) -> str | None:
    """What a spinner shows while the worker is not running yet; None when not waiting."""
    if status.phase is not WorkerPhase.PENDING:
        return None
    if status.reason in (reasons.QUOTA_EXCEEDED, reasons.PROVIDER_ERROR) and status.message:
        # The provider's own sentence: "waiting for quota: exceeded quota: ...",
        # "Kubernetes API busy, retrying: ...".
        return status.message
    if status.reason and status.message:
        return f"{status.reason}: {status.message}"
    return status.reason or status.message or "waiting for the worker to start"


def state_for_status(state: JobState, status: WorkerStatus) -> JobState | None:
    """The state an unfinished job moves to on its current worker's status, if any.

    A worker whose pod cannot be created yet for want of quota holds no place on the
    platform: its job is QUEUED again (keeping the worker, whose create keeps trying)
    and becomes STARTING once the pod exists."""
    waiting_for_quota = (
        status.phase is WorkerPhase.PENDING and status.reason == reasons.QUOTA_EXCEEDED
    )
    if state is JobState.STARTING and waiting_for_quota:
        return JobState.QUEUED
    created = status.phase in (WorkerPhase.PENDING, WorkerPhase.RUNNING)
    if state is JobState.QUEUED and created and not waiting_for_quota:
        return JobState.STARTING
    return None


def should_retry(job: Job, failure: Failure, *, platform_retries: int) -> bool:
    """Whether the failure of the job's current attempt earns another attempt.

    A disruption (evicted, preempted, worker lost: the platform took the job away) is
    retried while fewer than ``platform_retries`` earlier attempts ended that way, like a
    Kubernetes Job's podFailurePolicy ignoring ``DisruptionTarget`` for its backoffLimit.
    Other retryable failures use up the job's own ``max_attempts``; disrupted attempts
    do not count against it.
    """
    if failure.reason in reasons.DISRUPTION_REASONS:
        return job.disruptions < platform_retries
    own_attempts = job.attempt - job.disruptions
    return failure.reason in reasons.RETRYABLE_REASONS and own_attempts < job.spec.max_attempts


def retries_exhausted(job: Job, failure: Failure, *, platform_retries: int) -> Failure:
    """The failure a job ends with when :func:`should_retry` said no: a disruption says
    that the platform's retries ran out, so the user knows it was not the job's fault."""
    if failure.reason not in reasons.DISRUPTION_REASONS or platform_retries == 0:
        return failure
    note = f"not retried: {job.disruptions} disrupted attempts before (HODEI_PLATFORM_RETRIES)"
    message = f"{failure.message}; {note}" if failure.message else note
    return Failure(failure.reason, message, failure.exit_code)


def with_ended_attempt(
    job: Job, *, reason: Reason | None, message: str | None, at: datetime, disruption: bool = False
) -> tuple[Attempt, ...]:
    """The job's attempts with its current one (if a worker serves it) recorded as ended."""
    if job.worker_id is None or job.attempt == 0:
        return job.attempts
    ended = Attempt(job.attempt, job.worker_id, reason, message, at, disruption)
    return (*job.attempts, ended)


TERMINATED_MESSAGE = (
    "the worker was stopped by a SIGTERM that Hodei did not send: its pod or process was "
    "deleted by someone else, evicted, or its node is shutting down"
)


def failure_of_termination(status: WorkerStatus | None) -> Failure:
    """What an agent's "terminated" result means: the platform took the worker away.

    The provider's diagnosis (an eviction's reason and Kubernetes message) names it when
    the provider has seen it; otherwise it is a generic WorkerLost."""
    if status is not None and status.reason in reasons.DISRUPTION_REASONS:
        return Failure(status.reason, status.message or TERMINATED_MESSAGE)
    return Failure(reasons.WORKER_LOST, TERMINATED_MESSAGE)


def failed_outcome(failure: Failure) -> Outcome:
    return Outcome(JobState.FAILED, failure.exit_code, failure.reason, failure.message)


def backstop_due(job: Job, now: datetime, *, grace: timedelta = TIMEOUT_BACKSTOP) -> bool:
    """Whether a RUNNING job is past timeout + grace with no result: the server ends it."""
    if job.state is not JobState.RUNNING or job.spec.timeout_seconds is None:
        return False
    if job.started_at is None:
        return False
    # Compared in seconds, not as a datetime: a timeout stored before specs were bounded
    # (1e300, inf) must not overflow the arithmetic of the loop that checks every job.
    elapsed = (now - job.started_at - grace).total_seconds()
    return elapsed >= job.spec.timeout_seconds


def backstop_outcome(job: Job, *, grace: timedelta = TIMEOUT_BACKSTOP) -> Outcome:
    timeout = job.spec.timeout_seconds or 0
    return Outcome(
        JobState.TIMED_OUT,
        None,
        reasons.DEADLINE_EXCEEDED,
        f"no result {grace.total_seconds():g}s after the {timeout:g}s timeout; "
        "the worker was deleted",
    )


def overdue(since: Mapping[K, datetime], now: datetime, grace: timedelta) -> list[K]:
    """Keys whose time in ``since`` is at least ``grace`` ago."""
    return [key for key, at in since.items() if now - at >= grace]


class CancelAction(enum.Enum):
    NONE = "none"  # already finished
    FINISH = "finish"  # QUEUED: cancelled at once
    DELETE_WORKER = "delete worker"  # STARTING: no process to signal yet
    SIGNAL_AGENT = "signal agent"  # RUNNING: the agent kills the process group


def cancel_action(state: JobState) -> CancelAction:
    """What cancelling a job in ``state`` takes: nothing once finished, ending it at once
    while QUEUED, deleting its worker while STARTING (no process to signal yet), telling
    its agent while RUNNING."""
    if state.terminal:
        return CancelAction.NONE
    if state is JobState.QUEUED:
        return CancelAction.FINISH
    if state is JobState.STARTING:
        return CancelAction.DELETE_WORKER
    return CancelAction.SIGNAL_AGENT


CANCELLED_OUTCOME = Outcome(JobState.CANCELLED, None, reasons.CANCELLED, "cancelled by request")
