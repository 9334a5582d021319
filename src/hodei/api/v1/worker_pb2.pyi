from hodei.api.v1 import types_pb2 as _types_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class StartFailure(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    START_FAILURE_UNSPECIFIED: _ClassVar[StartFailure]
    START_FAILURE_COMMAND_NOT_FOUND: _ClassVar[StartFailure]
    START_FAILURE_NOT_EXECUTABLE: _ClassVar[StartFailure]
    START_FAILURE_AGENT_ERROR: _ClassVar[StartFailure]
START_FAILURE_UNSPECIFIED: StartFailure
START_FAILURE_COMMAND_NOT_FOUND: StartFailure
START_FAILURE_NOT_EXECUTABLE: StartFailure
START_FAILURE_AGENT_ERROR: StartFailure

class WorkerMessage(_message.Message):
    __slots__ = ("register", "started", "logs", "result", "heartbeat")
    REGISTER_FIELD_NUMBER: _ClassVar[int]
    STARTED_FIELD_NUMBER: _ClassVar[int]
    LOGS_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    register: Register
    started: JobStarted
    logs: LogBatch
    result: JobResult
    heartbeat: Heartbeat
    def __init__(self, register: _Optional[_Union[Register, _Mapping]] = ..., started: _Optional[_Union[JobStarted, _Mapping]] = ..., logs: _Optional[_Union[LogBatch, _Mapping]] = ..., result: _Optional[_Union[JobResult, _Mapping]] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ...) -> None: ...

class Register(_message.Message):
    __slots__ = ("worker_id", "token", "resume_token")
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    RESUME_TOKEN_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    token: str
    resume_token: str
    def __init__(self, worker_id: _Optional[str] = ..., token: _Optional[str] = ..., resume_token: _Optional[str] = ...) -> None: ...

class JobStarted(_message.Message):
    __slots__ = ("job_id", "pid")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    pid: int
    def __init__(self, job_id: _Optional[str] = ..., pid: _Optional[int] = ...) -> None: ...

class LogBatch(_message.Message):
    __slots__ = ("chunks",)
    CHUNKS_FIELD_NUMBER: _ClassVar[int]
    chunks: _containers.RepeatedCompositeFieldContainer[_types_pb2.LogChunk]
    def __init__(self, chunks: _Optional[_Iterable[_Union[_types_pb2.LogChunk, _Mapping]]] = ...) -> None: ...

class JobResult(_message.Message):
    __slots__ = ("job_id", "exit_code", "timed_out", "cancelled", "error", "last_sequence", "terminated", "oom_killed", "start_failure")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    TIMED_OUT_FIELD_NUMBER: _ClassVar[int]
    CANCELLED_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    LAST_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    TERMINATED_FIELD_NUMBER: _ClassVar[int]
    OOM_KILLED_FIELD_NUMBER: _ClassVar[int]
    START_FAILURE_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    exit_code: int
    timed_out: bool
    cancelled: bool
    error: str
    last_sequence: int
    terminated: bool
    oom_killed: bool
    start_failure: StartFailure
    def __init__(self, job_id: _Optional[str] = ..., exit_code: _Optional[int] = ..., timed_out: _Optional[bool] = ..., cancelled: _Optional[bool] = ..., error: _Optional[str] = ..., last_sequence: _Optional[int] = ..., terminated: _Optional[bool] = ..., oom_killed: _Optional[bool] = ..., start_failure: _Optional[_Union[StartFailure, str]] = ...) -> None: ...

class Heartbeat(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ServerMessage(_message.Message):
    __slots__ = ("registered", "assign", "cancel", "log_ack", "result_ack", "input")
    REGISTERED_FIELD_NUMBER: _ClassVar[int]
    ASSIGN_FIELD_NUMBER: _ClassVar[int]
    CANCEL_FIELD_NUMBER: _ClassVar[int]
    LOG_ACK_FIELD_NUMBER: _ClassVar[int]
    RESULT_ACK_FIELD_NUMBER: _ClassVar[int]
    INPUT_FIELD_NUMBER: _ClassVar[int]
    registered: Registered
    assign: AssignJob
    cancel: CancelJob
    log_ack: LogAck
    result_ack: ResultAck
    input: _types_pb2.JobInput
    def __init__(self, registered: _Optional[_Union[Registered, _Mapping]] = ..., assign: _Optional[_Union[AssignJob, _Mapping]] = ..., cancel: _Optional[_Union[CancelJob, _Mapping]] = ..., log_ack: _Optional[_Union[LogAck, _Mapping]] = ..., result_ack: _Optional[_Union[ResultAck, _Mapping]] = ..., input: _Optional[_Union[_types_pb2.JobInput, _Mapping]] = ...) -> None: ...

class Registered(_message.Message):
    __slots__ = ("resume_token",)
    RESUME_TOKEN_FIELD_NUMBER: _ClassVar[int]
    resume_token: str
    def __init__(self, resume_token: _Optional[str] = ...) -> None: ...

class AssignJob(_message.Message):
    __slots__ = ("job_id", "spec")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    spec: _types_pb2.JobSpec
    def __init__(self, job_id: _Optional[str] = ..., spec: _Optional[_Union[_types_pb2.JobSpec, _Mapping]] = ...) -> None: ...

class CancelJob(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class LogAck(_message.Message):
    __slots__ = ("job_id", "sequence")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    sequence: int
    def __init__(self, job_id: _Optional[str] = ..., sequence: _Optional[int] = ...) -> None: ...

class ResultAck(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...
