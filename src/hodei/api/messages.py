"""The worker protocol (``WorkerService.Connect``) as plain dataclasses, both directions.

The control plane handles a worker's stream as a small state machine over these values
instead of over generated protobuf classes, which keeps the generated code inside
:mod:`hodei.api` and lets the session logic be tested without gRPC. Encoders and
decoders exist for both sides so test clients can speak the protocol too.
"""

from __future__ import annotations

from dataclasses import dataclass

from hodei.api.convert import (
    chunk_from_pb,
    chunk_to_pb,
    input_from_pb,
    input_to_pb,
    spec_from_pb,
    spec_to_pb,
)
from hodei.api.v1 import worker_pb2
from hodei.domain.ids import JobId, WorkerId
from hodei.domain.jobs import JobSpec
from hodei.domain.logs import LogChunk
from hodei.domain.reasons import StartFailure
from hodei.domain.stdio import JobInput

# JobResult.start_failure on the wire; UNSPECIFIED (0) is "none".
_START_FAILURE_PB: dict[StartFailure | None, worker_pb2.StartFailure] = {
    None: worker_pb2.START_FAILURE_UNSPECIFIED,
    StartFailure.COMMAND_NOT_FOUND: worker_pb2.START_FAILURE_COMMAND_NOT_FOUND,
    StartFailure.NOT_EXECUTABLE: worker_pb2.START_FAILURE_NOT_EXECUTABLE,
    StartFailure.AGENT_ERROR: worker_pb2.START_FAILURE_AGENT_ERROR,
}
_START_FAILURES = {wire: kind for kind, wire in _START_FAILURE_PB.items()}

__all__ = [
    "AssignJob",
    "CancelJob",
    "Heartbeat",
    "JobInput",
    "JobResult",
    "JobStarted",
    "LogAck",
    "LogBatch",
    "ProtocolError",
    "Register",
    "Registered",
    "ResultAck",
    "ServerMessage",
    "WorkerMessage",
    "decode_server_message",
    "decode_worker_message",
    "encode_server_message",
    "encode_worker_message",
]


class ProtocolError(ValueError):
    """A message that does not fit the protocol (empty oneof, unknown enum)."""


# --- worker -> server -------------------------------------------------------------


@dataclass(frozen=True)
class Register:
    worker_id: WorkerId
    token: str = ""
    resume_token: str = ""


@dataclass(frozen=True)
class JobStarted:
    job_id: JobId
    pid: int = 0


@dataclass(frozen=True)
class LogBatch:
    chunks: tuple[LogChunk, ...]


@dataclass(frozen=True)
class JobResult:
    job_id: JobId
    exit_code: int
    timed_out: bool = False
    cancelled: bool = False
    error: str = ""
    last_sequence: int = 0
    start_failure: StartFailure | None = None  # set with ``error``: why it could not start
    terminated: bool = False  # stopped by a signal the control plane did not send
    oom_killed: bool = False  # the kernel's OOM killer ended it (the job's cgroup says so)


@dataclass(frozen=True)
class Heartbeat:
    pass


WorkerMessage = Register | JobStarted | LogBatch | JobResult | Heartbeat

# --- server -> worker -------------------------------------------------------------


@dataclass(frozen=True)
class Registered:
    resume_token: str


@dataclass(frozen=True)
class AssignJob:
    job_id: JobId
    spec: JobSpec


@dataclass(frozen=True)
class CancelJob:
    job_id: JobId


@dataclass(frozen=True)
class LogAck:
    job_id: JobId
    sequence: int


@dataclass(frozen=True)
class ResultAck:
    job_id: JobId


# The client's stdin and terminal resizes travel to the agent as the domain's JobInput.
ServerMessage = Registered | AssignJob | CancelJob | LogAck | ResultAck | JobInput


def decode_worker_message(message: worker_pb2.WorkerMessage) -> WorkerMessage:
    """The dataclass for one message from a worker; raises :class:`ProtocolError`."""
    kind = message.WhichOneof("body")
    try:
        if kind == "register":
            r = message.register
            return Register(WorkerId(r.worker_id), r.token, r.resume_token)
        if kind == "started":
            return JobStarted(JobId(message.started.job_id), message.started.pid)
        if kind == "logs":
            return LogBatch(tuple(chunk_from_pb(c) for c in message.logs.chunks))
        if kind == "result":
            s = message.result
            return JobResult(
                JobId(s.job_id),
                s.exit_code,
                s.timed_out,
                s.cancelled,
                s.error,
                s.last_sequence,
                _START_FAILURES.get(s.start_failure),
                terminated=s.terminated,
                oom_killed=s.oom_killed,
            )
        if kind == "heartbeat":
            return Heartbeat()
    except ValueError as exc:
        raise ProtocolError(f"malformed {kind} message: {exc}") from None
    raise ProtocolError("empty worker message")


def encode_worker_message(message: WorkerMessage) -> worker_pb2.WorkerMessage:
    """The protobuf form of a worker's message (used by agents and test clients)."""
    match message:
        case Register():
            return worker_pb2.WorkerMessage(
                register=worker_pb2.Register(
                    worker_id=message.worker_id,
                    token=message.token,
                    resume_token=message.resume_token,
                )
            )
        case JobStarted():
            return worker_pb2.WorkerMessage(
                started=worker_pb2.JobStarted(job_id=message.job_id, pid=message.pid)
            )
        case LogBatch():
            return worker_pb2.WorkerMessage(
                logs=worker_pb2.LogBatch(chunks=[chunk_to_pb(c) for c in message.chunks])
            )
        case JobResult():
            return worker_pb2.WorkerMessage(
                result=worker_pb2.JobResult(
                    job_id=message.job_id,
                    exit_code=message.exit_code,
                    timed_out=message.timed_out,
                    cancelled=message.cancelled,
                    error=message.error,
                    last_sequence=message.last_sequence,
                    start_failure=_START_FAILURE_PB[message.start_failure],
                    terminated=message.terminated,
                    oom_killed=message.oom_killed,
                )
            )
        case Heartbeat():
            return worker_pb2.WorkerMessage(heartbeat=worker_pb2.Heartbeat())
    raise TypeError(f"not a worker message: {message!r}")  # pragma: no cover


def encode_server_message(message: ServerMessage) -> worker_pb2.ServerMessage:
    """The protobuf form of a control-plane message to a worker."""
    match message:
        case Registered():
            return worker_pb2.ServerMessage(
                registered=worker_pb2.Registered(resume_token=message.resume_token)
            )
        case AssignJob():
            return worker_pb2.ServerMessage(
                assign=worker_pb2.AssignJob(job_id=message.job_id, spec=spec_to_pb(message.spec))
            )
        case CancelJob():
            return worker_pb2.ServerMessage(cancel=worker_pb2.CancelJob(job_id=message.job_id))
        case LogAck():
            return worker_pb2.ServerMessage(
                log_ack=worker_pb2.LogAck(job_id=message.job_id, sequence=message.sequence)
            )
        case ResultAck():
            return worker_pb2.ServerMessage(result_ack=worker_pb2.ResultAck(job_id=message.job_id))
        case JobInput():
            return worker_pb2.ServerMessage(input=input_to_pb(message))
    raise TypeError(f"not a server message: {message!r}")  # pragma: no cover


def decode_server_message(message: worker_pb2.ServerMessage) -> ServerMessage:
    """The dataclass for one message from the control plane; raises :class:`ProtocolError`."""
    kind = message.WhichOneof("body")
    if kind == "registered":
        return Registered(message.registered.resume_token)
    if kind == "assign":
        return AssignJob(JobId(message.assign.job_id), spec_from_pb(message.assign.spec))
    if kind == "cancel":
        return CancelJob(JobId(message.cancel.job_id))
    if kind == "log_ack":
        return LogAck(JobId(message.log_ack.job_id), message.log_ack.sequence)
    if kind == "result_ack":
        return ResultAck(JobId(message.result_ack.job_id))
    if kind == "input":
        try:
            return input_from_pb(message.input)
        except ValueError as exc:
            raise ProtocolError(f"malformed input message: {exc}") from None
    raise ProtocolError("empty server message")
