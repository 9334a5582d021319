"""Conversions between domain values and the ``hodei.v1`` protobuf messages of the jobs API.

Protobuf has no "unset" for scalars, so the wire uses empty strings and zeros where the
domain uses ``None``; this module is the one place that maps between the two, in both
directions, so the server, the CLI and the tests agree on what an empty field means.
Timestamps travel as RFC 3339 strings in UTC.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from hodei.api.v1 import jobs_pb2, types_pb2
from hodei.domain import reasons
from hodei.domain.ids import JobId, WorkerId
from hodei.domain.jobs import Attempt, Job, JobSpec, Resources, SecretKeyRef, SpecError
from hodei.domain.logs import LogChunk, LogStream
from hodei.domain.states import JobState
from hodei.domain.stdio import JobInput, TerminalSize, TerminalSizeError
from hodei.domain.workers import WorkerPhase, WorkerRecord

__all__ = [
    "attempt_from_pb",
    "attempt_to_pb",
    "chunk_from_pb",
    "chunk_to_pb",
    "format_time",
    "input_from_pb",
    "input_to_pb",
    "job_from_pb",
    "job_to_pb",
    "jobs_page",
    "parse_time",
    "spec_from_pb",
    "spec_to_pb",
    "state_from_pb",
    "state_to_pb",
    "stream_from_pb",
    "stream_to_pb",
    "terminal_size_from_pb",
    "terminal_size_to_pb",
    "worker_from_pb",
    "worker_to_pb",
]


def format_time(value: datetime | None) -> str:
    """RFC 3339 in UTC with a ``Z``; ``None`` becomes the empty string."""
    if value is None:
        return ""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_time(text: str) -> datetime | None:
    """The inverse of :func:`format_time`."""
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def state_to_pb(state: JobState) -> types_pb2.JobState:
    return types_pb2.JobState.Value(state.value)  # type: ignore[no-any-return]


def state_from_pb(value: types_pb2.JobState) -> JobState:
    """The domain state; raises ValueError for ``JOB_STATE_UNSPECIFIED``."""
    return JobState(types_pb2.JobState.Name(value))


def stream_to_pb(stream: LogStream) -> types_pb2.LogStream:
    return types_pb2.LogStream.Value(stream.value)  # type: ignore[no-any-return]


def stream_from_pb(value: types_pb2.LogStream) -> LogStream:
    """The domain stream; raises ValueError for ``LOG_STREAM_UNSPECIFIED``."""
    return LogStream(types_pb2.LogStream.Name(value))


def _none_if_empty(text: str) -> str | None:
    return text or None


def spec_to_pb(spec: JobSpec) -> types_pb2.JobSpec:
    message = types_pb2.JobSpec(
        command=list(spec.command),
        env=dict(spec.env),
        image=spec.image or "",
        resources=types_pb2.Resources(
            cpu_request=spec.resources.cpu_request or "",
            cpu_limit=spec.resources.cpu_limit or "",
            memory_request=spec.resources.memory_request or "",
            memory_limit=spec.resources.memory_limit or "",
        ),
        timeout_seconds=spec.timeout_seconds or 0.0,
        labels=dict(spec.labels),
        max_attempts=spec.max_attempts,
        provider=spec.provider or "",
        profile=spec.profile or "",
        secret_env={
            name: types_pb2.SecretKeyRef(secret=ref.secret, key=ref.key)
            for name, ref in spec.secret_env.items()
        },
        stdin=spec.stdin,
        tty=spec.tty,
        workdir=spec.workdir or "",
    )
    if spec.shell is not None:
        message.shell = spec.shell
    if spec.tty_size is not None:
        message.tty_size.CopyFrom(terminal_size_to_pb(spec.tty_size))
    return message


def terminal_size_to_pb(size: TerminalSize) -> types_pb2.TerminalSize:
    return types_pb2.TerminalSize(rows=size.rows, columns=size.columns)


def terminal_size_from_pb(message: types_pb2.TerminalSize) -> TerminalSize:
    """The domain size; raises :class:`TerminalSizeError` for 0 or more than 65535."""
    return TerminalSize(rows=message.rows, columns=message.columns)


def input_to_pb(item: JobInput) -> types_pb2.JobInput:
    message = types_pb2.JobInput(job_id=item.job_id, data=item.data, eof=item.eof)
    if item.resize is not None:
        message.resize.CopyFrom(terminal_size_to_pb(item.resize))
    return message


def input_from_pb(message: types_pb2.JobInput) -> JobInput:
    """The domain input item; raises :class:`TerminalSizeError` for a bad resize."""
    resize = terminal_size_from_pb(message.resize) if message.HasField("resize") else None
    return JobInput(JobId(message.job_id), message.data, message.eof, resize)


def spec_from_pb(message: types_pb2.JobSpec) -> JobSpec:
    """A domain spec, not yet validated (call :meth:`JobSpec.validated`)."""
    resources = message.resources
    return JobSpec(
        command=tuple(message.command),
        shell=message.shell if message.HasField("shell") else None,
        env=dict(message.env),
        image=_none_if_empty(message.image),
        resources=Resources(
            cpu_request=_none_if_empty(resources.cpu_request),
            cpu_limit=_none_if_empty(resources.cpu_limit),
            memory_request=_none_if_empty(resources.memory_request),
            memory_limit=_none_if_empty(resources.memory_limit),
        ),
        timeout_seconds=message.timeout_seconds or None,
        labels=dict(message.labels),
        max_attempts=message.max_attempts or 1,
        provider=_none_if_empty(message.provider),
        profile=_none_if_empty(message.profile),
        secret_env={
            name: SecretKeyRef(secret=ref.secret, key=ref.key)
            for name, ref in message.secret_env.items()
        },
        stdin=message.stdin,
        tty=message.tty,
        tty_size=_tty_size(message),
        workdir=_none_if_empty(message.workdir),
    )


def attempt_to_pb(attempt: Attempt) -> types_pb2.Attempt:
    return types_pb2.Attempt(
        number=attempt.number,
        worker_id=attempt.worker_id or "",
        reason=attempt.reason or "",
        message=attempt.message or "",
        finished_at=format_time(attempt.finished_at),
        disruption=attempt.disruption,
    )


def attempt_from_pb(message: types_pb2.Attempt) -> Attempt:
    return Attempt(
        number=message.number,
        worker_id=WorkerId(message.worker_id) if message.worker_id else None,
        reason=reasons.Reason(message.reason) if message.reason else None,
        message=_none_if_empty(message.message),
        finished_at=parse_time(message.finished_at),
        disruption=message.disruption,
    )


def _tty_size(message: types_pb2.JobSpec) -> TerminalSize | None:
    if not message.HasField("tty_size"):
        return None
    try:
        return terminal_size_from_pb(message.tty_size)
    except TerminalSizeError as exc:
        raise SpecError(str(exc)) from None


def job_to_pb(job: Job) -> types_pb2.Job:
    message = types_pb2.Job(
        id=job.id,
        spec=spec_to_pb(job.spec),
        state=state_to_pb(job.state),
        reason=job.reason or "",
        message=job.message or "",
        created_at=format_time(job.created_at),
        started_at=format_time(job.started_at),
        finished_at=format_time(job.finished_at),
        worker_id=job.worker_id or "",
        attempt=job.attempt,
        provider=job.provider or "",
        waiting_reason=job.waiting_reason or "",
        attempts=[attempt_to_pb(a) for a in job.attempts],
    )
    if job.exit_code is not None:
        message.exit_code = job.exit_code
    return message


# Jobs per ListJobs page: when the request says 0, and at most.
DEFAULT_LIST_LIMIT = 100
MAX_LIST_LIMIT = 1000
# A page of ListJobs stays far below the 32 MiB gRPC message limit whatever the jobs hold.
MAX_PAGE_BYTES = 4 * 1024 * 1024
# One job larger than a page (possible only for jobs stored before specs were bounded)
# is listed with its command, script and env values left out; GetJob still shows it.
_ELIDED = "(left out of the listing: too large; see hodei jobs show)"


def jobs_page(
    jobs: Sequence[Job], *, limit: int, max_bytes: int = MAX_PAGE_BYTES
) -> jobs_pb2.ListJobsResponse:
    """One ListJobs page of ``jobs`` (in listing order; pass ``limit + 1`` of them when
    there may be more, so the page knows). The page holds at most ``limit`` jobs and at
    most ``max_bytes`` of encoded jobs; ``next_page_token`` (the last job's id) is set
    when jobs were left for the next page."""
    page = jobs_pb2.ListJobsResponse()
    size = 0
    for job in jobs[:limit]:
        message = job_to_pb(job)
        if message.ByteSize() > max_bytes:
            message = _elided(message)
        if page.jobs and size + message.ByteSize() > max_bytes:
            break
        page.jobs.append(message)
        size += message.ByteSize()
    if len(page.jobs) < len(jobs):
        page.next_page_token = page.jobs[-1].id
    return page


def _elided(message: types_pb2.Job) -> types_pb2.Job:
    spec = message.spec
    del spec.command[:]
    spec.command.append(_ELIDED)
    spec.ClearField("shell")
    for key in spec.env:
        spec.env[key] = ""
    return message


def job_from_pb(message: types_pb2.Job) -> Job:
    """The domain job a client received."""
    created_at = parse_time(message.created_at)
    return Job(
        id=JobId(message.id),
        spec=spec_from_pb(message.spec),
        state=state_from_pb(message.state),
        created_at=created_at if created_at is not None else datetime.now(UTC),
        attempt=message.attempt,
        exit_code=message.exit_code if message.HasField("exit_code") else None,
        reason=reasons.Reason(message.reason) if message.reason else None,
        message=_none_if_empty(message.message),
        started_at=parse_time(message.started_at),
        finished_at=parse_time(message.finished_at),
        worker_id=WorkerId(message.worker_id) if message.worker_id else None,
        provider=_none_if_empty(message.provider),
        waiting_reason=_none_if_empty(message.waiting_reason),
        attempts=tuple(attempt_from_pb(a) for a in message.attempts),
    )


def chunk_to_pb(chunk: LogChunk) -> types_pb2.LogChunk:
    return types_pb2.LogChunk(
        job_id=chunk.job_id,
        sequence=chunk.sequence,
        stream=stream_to_pb(chunk.stream),
        data=chunk.data,
    )


def chunk_from_pb(message: types_pb2.LogChunk) -> LogChunk:
    return LogChunk(
        job_id=JobId(message.job_id),
        sequence=message.sequence,
        stream=stream_from_pb(message.stream),
        data=message.data,
    )


def worker_to_pb(record: WorkerRecord) -> jobs_pb2.Worker:
    return jobs_pb2.Worker(
        id=record.id,
        job_id=record.job_id,
        provider=record.provider,
        state=record.state.value,
        name=record.name or "",
        created_at=format_time(record.created_at),
        reason=record.reason or "",
        message=record.message or "",
    )


def worker_from_pb(message: jobs_pb2.Worker) -> WorkerRecord:
    created_at = parse_time(message.created_at)
    return WorkerRecord(
        id=WorkerId(message.id),
        job_id=JobId(message.job_id),
        provider=message.provider,
        attempt=0,
        created_at=created_at if created_at is not None else datetime.now(UTC),
        state=WorkerPhase(message.state),
        name=_none_if_empty(message.name),
        reason=reasons.Reason(message.reason) if message.reason else None,
        message=_none_if_empty(message.message),
    )
