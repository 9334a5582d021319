from datetime import UTC, datetime

import pytest

from hodei.api import convert
from hodei.api.messages import (
    AssignJob,
    CancelJob,
    Heartbeat,
    JobResult,
    JobStarted,
    LogAck,
    LogBatch,
    ProtocolError,
    Register,
    Registered,
    ResultAck,
    ServerMessage,
    WorkerMessage,
    decode_server_message,
    decode_worker_message,
    encode_server_message,
    encode_worker_message,
)
from hodei.api.v1 import types_pb2, worker_pb2
from hodei.domain.ids import JobId, WorkerId
from hodei.domain.jobs import Attempt, Job, JobSpec, Resources, SecretKeyRef, SpecError
from hodei.domain.logs import LogChunk, LogStream
from hodei.domain.reasons import Reason, StartFailure
from hodei.domain.states import JobState
from hodei.domain.stdio import JobInput, TerminalSize
from hodei.domain.workers import WorkerPhase, WorkerRecord

T0 = datetime(2026, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
FULL_SPEC = JobSpec(
    command=("python", "-c", "print(1)"),
    env={"A": "b"},
    image="img:1",
    resources=Resources("100m", "1", "64Mi", "1Gi"),
    timeout_seconds=3.5,
    labels={"team": "a"},
    max_attempts=4,
    provider="kubernetes",
    profile="gpu",
    secret_env={"DB_PASSWORD": SecretKeyRef("db-creds", "password")},
)


TERMINAL_SPEC = JobSpec(
    command=("sh",), stdin=True, tty=True, tty_size=TerminalSize(40, 120), workdir="/srv"
)


@pytest.mark.parametrize(
    "spec",
    [FULL_SPEC, TERMINAL_SPEC, JobSpec(shell="echo hi"), JobSpec(command=("true",))],
)
def test_spec_round_trip(spec: JobSpec) -> None:
    assert convert.spec_from_pb(convert.spec_to_pb(spec)) == spec


def test_empty_wire_fields_mean_defaults() -> None:
    spec = convert.spec_from_pb(types_pb2.JobSpec(command=["x"]))
    assert (spec.shell, spec.image, spec.timeout_seconds, spec.max_attempts, spec.provider) == (
        None,
        None,
        None,
        1,
        None,
    )
    assert spec.resources == Resources()


def test_empty_shell_is_kept_apart_from_no_shell() -> None:
    assert convert.spec_from_pb(convert.spec_to_pb(JobSpec(shell=""))).shell == ""


@pytest.mark.parametrize("exit_code", [None, 0, 3])
def test_job_round_trip(exit_code: int | None) -> None:
    job = Job(
        JobId("j-1"),
        FULL_SPEC,
        JobState.FAILED,
        T0,
        attempt=2,
        exit_code=exit_code,
        reason=Reason("NonZeroExit"),
        message="exit code 3",
        started_at=T0,
        finished_at=T0,
        worker_id=WorkerId("w-1"),
        provider="local",
        waiting_reason="pulling",
        attempts=(
            Attempt(1, WorkerId("w-0"), Reason("Preempted"), "preempting", T0, True),
            Attempt(2, None, Reason("NonZeroExit"), None, None, False),
        ),
    )
    message = convert.job_to_pb(job)
    assert message.waiting_reason == "pulling"
    assert message.created_at == "2026-05-06T07:08:09.123456Z"
    assert convert.job_from_pb(message) == job


def test_all_states_and_streams_map() -> None:
    for state in JobState:
        assert convert.state_from_pb(convert.state_to_pb(state)) is state
    for stream in LogStream:
        assert convert.stream_from_pb(convert.stream_to_pb(stream)) is stream
    with pytest.raises(ValueError):
        convert.state_from_pb(types_pb2.JOB_STATE_UNSPECIFIED)


def test_chunk_and_worker_round_trip() -> None:
    chunk = LogChunk(JobId("j-1"), 7, LogStream.STDERR, b"\xff\x00")
    assert convert.chunk_from_pb(convert.chunk_to_pb(chunk)) == chunk
    record = WorkerRecord(
        WorkerId("w-1"), JobId("j-1"), "local", 0, T0, WorkerPhase.RUNNING, "pid 9"
    )
    assert convert.worker_from_pb(convert.worker_to_pb(record)) == record


def test_time_helpers() -> None:
    assert convert.format_time(None) == "" and convert.parse_time("") is None
    assert convert.parse_time(convert.format_time(T0)) == T0


WORKER_MESSAGES = [
    Register(WorkerId("w-1"), token="t"),
    Register(WorkerId("w-1"), resume_token="r"),
    JobStarted(JobId("j-1"), 42),
    LogBatch((LogChunk(JobId("j-1"), 1, LogStream.STDOUT, b"x"),)),
    JobResult(JobId("j-1"), 3, timed_out=True, cancelled=False, error="e", last_sequence=9),
    *(
        JobResult(JobId("j-1"), 127, error="x: not found", start_failure=kind)
        for kind in StartFailure
    ),
    JobResult(JobId("j-1"), 143, terminated=True),
    Heartbeat(),
]
SERVER_MESSAGES = [
    Registered("r"),
    AssignJob(JobId("j-1"), FULL_SPEC),
    CancelJob(JobId("j-1")),
    LogAck(JobId("j-1"), 5),
    ResultAck(JobId("j-1")),
    AssignJob(JobId("j-1"), TERMINAL_SPEC),
    JobInput(JobId("j-1"), data=b"\x00typed\xff"),
    JobInput(JobId("j-1"), eof=True),
    JobInput(JobId("j-1"), resize=TerminalSize(rows=50, columns=132)),
]


@pytest.mark.parametrize("message", WORKER_MESSAGES)
def test_worker_messages_round_trip(message: WorkerMessage) -> None:
    assert decode_worker_message(encode_worker_message(message)) == message


@pytest.mark.parametrize("message", SERVER_MESSAGES)
def test_server_messages_round_trip(message: ServerMessage) -> None:
    assert decode_server_message(encode_server_message(message)) == message


def test_a_spec_without_the_terminal_fields_has_no_stdin_and_no_terminal() -> None:
    spec = convert.spec_from_pb(types_pb2.JobSpec(command=["x"]))
    assert (spec.stdin, spec.tty, spec.tty_size, spec.workdir) == (False, False, None, None)


def test_a_terminal_size_out_of_range_is_refused_naming_the_field() -> None:
    wire = types_pb2.JobSpec(command=["sh"], tty=True, tty_size=types_pb2.TerminalSize(rows=0))
    with pytest.raises(SpecError, match=r"tty_size.rows: 0; a whole number from 1 to 65535"):
        convert.spec_from_pb(wire)
    resize = worker_pb2.ServerMessage(
        input=types_pb2.JobInput(job_id="j", resize=types_pb2.TerminalSize(rows=1, columns=70000))
    )
    with pytest.raises(ProtocolError, match=r"malformed input message: tty_size\.columns"):
        decode_server_message(resize)


def test_empty_or_malformed_messages_are_protocol_errors() -> None:
    with pytest.raises(ProtocolError):
        decode_worker_message(worker_pb2.WorkerMessage())
    with pytest.raises(ProtocolError):
        decode_server_message(worker_pb2.ServerMessage())
    bad = worker_pb2.WorkerMessage(
        logs=worker_pb2.LogBatch(chunks=[types_pb2.LogChunk(job_id="j", sequence=1)])
    )
    with pytest.raises(ProtocolError, match="malformed logs"):
        decode_worker_message(bad)


def _job(number: int, argument_bytes: int = 1) -> Job:
    return Job(JobId(f"j-{number}"), JobSpec(command=("x" * argument_bytes,)), JobState.QUEUED, T0)


def test_a_jobs_page_stops_at_the_limit_and_names_where_to_continue() -> None:
    page = convert.jobs_page([_job(n) for n in range(4)], limit=3)
    assert [j.id for j in page.jobs] == ["j-0", "j-1", "j-2"]
    assert page.next_page_token == "j-2"
    whole = convert.jobs_page([_job(n) for n in range(3)], limit=3)
    assert (len(whole.jobs), whole.next_page_token) == (3, "")


def test_a_jobs_page_stops_at_its_byte_budget_but_always_holds_one_job() -> None:
    jobs = [_job(n, 400) for n in range(5)]
    page = convert.jobs_page(jobs, limit=10, max_bytes=1000)
    assert [j.id for j in page.jobs] == ["j-0", "j-1"]
    assert page.next_page_token == "j-1"
    huge = convert.jobs_page([_job(0, 5000), _job(1)], limit=10, max_bytes=1000)
    assert huge.jobs[0].spec.command == [
        "(left out of the listing: too large; see hodei jobs show)"
    ]
    assert [j.id for j in huge.jobs] == ["j-0", "j-1"]
