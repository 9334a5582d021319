"""The worker side of the protocol, driven message by message by a test client.

The provider here creates nothing: each WorkerRequest lands on a queue and the test
plays the agent with the request's token, so replays, foreign tokens, reports for other
jobs and reconnects can be exercised exactly.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

import grpc
import pytest

from hodei.api import convert
from hodei.api.messages import (
    AssignJob,
    CancelJob,
    JobResult,
    JobStarted,
    LogAck,
    LogBatch,
    ResultAck,
)
from hodei.api.messages import encode_worker_message as convert_worker
from hodei.api.v1 import jobs_pb2, types_pb2
from hodei.domain.ids import JobId, WorkerId
from hodei.domain.logs import LogChunk, LogStream
from hodei.domain.states import JobState
from hodei.providers.base import Origin, WorkerRequest, WorkerStatus
from hodei.providers.fake import FakeProvider
from hodei.server.tuning import Tuning
from tests.fixtures.clock import START, FakeClock
from tests.fixtures.control_plane import FAST, MakeControlPlane, Manual
from tests.fixtures.scripted_worker import StreamEnded, WorkerClient
from tests.fixtures.stubs import job_stub
from tests.fixtures.waiting import eventually
from tests.server.helpers import logs, output, submit, wait_done


def chunk(job_id: str, seq: int, data: bytes, stream: LogStream = LogStream.STDOUT) -> LogChunk:
    return LogChunk(JobId(job_id), seq, stream, data)


async def test_register_assign_run_and_finish(manual: Manual) -> None:
    job_id, request = await manual.job("anything", "--flag")
    client = manual.client()
    await client.register(request.worker_id, token=request.token)
    assign = await client.expect(AssignJob)
    assert assign.job_id == job_id and assign.spec.command == ("anything", "--flag")
    await client.send(JobStarted(JobId(job_id), 1))
    await client.send(
        LogBatch(
            (chunk(job_id, 1, b"no newline"), chunk(job_id, 2, b"\x00\xff\xfe", LogStream.STDERR))
        )
    )
    assert await client.expect(LogAck) == LogAck(JobId(job_id), 2)
    await client.send(JobResult(JobId(job_id), 0, last_sequence=2))
    assert await client.expect(ResultAck) == ResultAck(JobId(job_id))
    done = await wait_done(manual.stub, job_id)
    assert done.state is JobState.SUCCEEDED
    assert output(await logs(manual.stub, job_id)) == {
        "STDOUT": b"no newline",
        "STDERR": b"\x00\xff\xfe",
    }


async def test_replayed_token_is_unauthenticated(manual: Manual) -> None:
    _, request = await manual.job("x")
    first = manual.client()
    await first.register(request.worker_id, token=request.token)
    replay = manual.client()
    with pytest.raises(StreamEnded) as info:
        await replay.register(request.worker_id, token=request.token)
    assert info.value.code is grpc.StatusCode.UNAUTHENTICATED
    assert "already used" in str(info.value.details)


async def test_unknown_token_is_unauthenticated(manual: Manual) -> None:
    _, request = await manual.job("x")
    with pytest.raises(StreamEnded) as info:
        await manual.client().register(request.worker_id, token="guessed")
    assert info.value.code is grpc.StatusCode.UNAUTHENTICATED


async def test_foreign_token_is_permission_denied(manual: Manual) -> None:
    _, first = await manual.job("x")
    _, second = await manual.job("y")
    with pytest.raises(StreamEnded) as info:
        await manual.client().register(second.worker_id, token=first.token)
    assert info.value.code is grpc.StatusCode.PERMISSION_DENIED
    # The foreign attempt did not burn the token for its rightful worker.
    await manual.client().register(first.worker_id, token=first.token)


async def test_worker_cannot_report_for_another_job(manual: Manual) -> None:
    _, request_a = await manual.job("a")
    job_b, _ = await manual.job("b")
    client = manual.client()
    await client.register(request_a.worker_id, token=request_a.token)
    await client.expect(AssignJob)
    await client.send(JobResult(JobId(job_b), 0))
    with pytest.raises(StreamEnded) as info:
        await client.recv()
    assert info.value.code is grpc.StatusCode.PERMISSION_DENIED
    job = await manual.plane.jobs.get(JobId(job_b))
    assert job is not None and not job.state.terminal


async def test_result_waits_for_missing_log_chunks(manual: Manual) -> None:
    job_id, request = await manual.job("x")
    client = manual.client()
    resume = await client.register(request.worker_id, token=request.token)
    await client.expect(AssignJob)
    await client.send(JobStarted(JobId(job_id)))
    await client.send(LogBatch((chunk(job_id, 1, b"one\n"),)))
    await client.expect(LogAck)
    await client.send(JobResult(JobId(job_id), 0, last_sequence=2))  # chunk 2 never arrived
    with pytest.raises(StreamEnded) as info:
        await client.recv()
    assert info.value.code is grpc.StatusCode.FAILED_PRECONDITION
    # Reconnect, re-send everything unacknowledged (and an acknowledged one again): idempotent.
    again = manual.client()
    assert await again.register(request.worker_id, resume_token=resume) != resume  # the next one
    await again.send(LogBatch((chunk(job_id, 1, b"one\n"), chunk(job_id, 2, b"two\n"))))
    assert await again.expect(LogAck) == LogAck(JobId(job_id), 2)
    await again.send(JobResult(JobId(job_id), 0, last_sequence=2))
    await again.expect(ResultAck)
    done = await wait_done(manual.stub, job_id)
    assert done.state is JobState.SUCCEEDED
    chunks = await logs(manual.stub, job_id)
    assert [c.sequence for c in chunks] == [1, 2]
    assert output(chunks)["STDOUT"] == b"one\ntwo\n"


async def test_reconnect_while_running_gets_no_second_assignment(manual: Manual) -> None:
    job_id, request = await manual.job("x")
    client = manual.client()
    resume = await client.register(request.worker_id, token=request.token)
    await client.expect(AssignJob)
    await client.send(JobStarted(JobId(job_id)))
    await client.send(LogBatch((chunk(job_id, 1, b"a"),)))
    await client.expect(LogAck)
    await client.close()
    await eventually(lambda: not manual.plane.workers.connected(request.worker_id), within=20)
    again = manual.client()
    await again.register(request.worker_id, resume_token=resume)
    await again.send(JobResult(JobId(job_id), 5, last_sequence=1))
    assert isinstance(await again.recv(), ResultAck)  # no AssignJob came first
    done = await wait_done(manual.stub, job_id)
    assert (done.state, done.exit_code) == (JobState.FAILED, 5)


async def test_resume_token_of_another_worker_is_permission_denied(manual: Manual) -> None:
    _, first = await manual.job("a")
    _, second = await manual.job("b")
    resume = await manual.client().register(first.worker_id, token=first.token)
    with pytest.raises(StreamEnded) as info:
        await manual.client().register(second.worker_id, resume_token=resume)
    assert info.value.code is grpc.StatusCode.PERMISSION_DENIED


async def test_first_message_must_be_register(manual: Manual) -> None:
    job_id, _ = await manual.job("x")
    client = manual.client()
    await client.send(JobStarted(JobId(job_id)))
    with pytest.raises(StreamEnded) as info:
        await client.recv()
    assert info.value.code is grpc.StatusCode.INVALID_ARGUMENT


async def test_cancel_running_job_signals_agent(manual: Manual) -> None:
    job_id, request = await manual.job("x")
    client = manual.client()
    await client.register(request.worker_id, token=request.token)
    await client.expect(AssignJob)
    await client.send(JobStarted(JobId(job_id)))
    await _until(manual, job_id, JobState.RUNNING)
    reply = await manual.stub.CancelJob(jobs_pb2.CancelJobRequest(id=job_id))
    assert reply.state == types_pb2.RUNNING  # the agent has been asked; it ends the job
    assert await client.expect(CancelJob) == CancelJob(JobId(job_id))
    await client.send(JobResult(JobId(job_id), 143, cancelled=True))
    await client.expect(ResultAck)
    done = await wait_done(manual.stub, job_id)
    assert (done.state, done.reason) == (JobState.CANCELLED, "Cancelled")


async def test_cancel_starting_job_deletes_worker(manual: Manual) -> None:
    job_id, request = await manual.job("x")
    await manual.stub.CancelJob(jobs_pb2.CancelJobRequest(id=job_id))
    done = await wait_done(manual.stub, job_id)
    assert done.state is JobState.CANCELLED
    await _until_deleted(manual, request.worker_id)
    with pytest.raises(StreamEnded) as info:  # the cancelled worker may no longer register
        await manual.client().register(request.worker_id, token=request.token)
    assert info.value.code is grpc.StatusCode.PERMISSION_DENIED


async def test_timeout_backstop_ends_silent_running_job(manual: Manual) -> None:
    job_id, request = await manual.job("x", timeout_seconds=0.2)
    client = manual.client()
    await client.register(request.worker_id, token=request.token)
    await client.expect(AssignJob)
    await client.send(JobStarted(JobId(job_id)))
    done = await wait_done(manual.stub, job_id)  # FAST tuning: backstop 0.5 s after timeout
    assert (done.state, done.reason) == (JobState.TIMED_OUT, "DeadlineExceeded")
    await _until_deleted(manual, request.worker_id)


async def test_backstop_and_its_grace_are_crossed_on_a_driven_clock(
    control_plane_factory: MakeControlPlane,
) -> None:
    clock = FakeClock()
    provider = FakeProvider("local")
    requests: asyncio.Queue[WorkerRequest] = asyncio.Queue()
    provider.on_create = requests.put_nowait
    # Production timings: a 30 s backstop after a 10 s timeout, without waiting 40 s.
    plane = await control_plane_factory(providers=[provider], tuning=Tuning(), clock=clock)
    async with grpc.aio.insecure_channel(plane.address) as channel:
        manual = Manual(plane, job_stub(channel))
        job = await submit(manual.stub, "x", timeout_seconds=10)
        request = await asyncio.wait_for(requests.get(), 5)
        client = manual.client()
        await client.register(request.worker_id, token=request.token)
        await client.expect(AssignJob)
        await client.send(JobStarted(JobId(job.id)))
        await _until(manual, job.id, JobState.RUNNING)
        await clock.advance(39)  # timeout + grace not reached yet
        running = await manual.stub.GetJob(jobs_pb2.GetJobRequest(id=job.id))
        assert running.state == types_pb2.RUNNING
        await clock.advance(2)
        done = await wait_done(manual.stub, job.id)
        await client.close()
    assert (done.state, done.reason) == (JobState.TIMED_OUT, "DeadlineExceeded")
    assert done.message == "no result 30s after the 10s timeout; the worker was deleted"
    # Ended by the supervisor's first check at or past timeout + grace (it ticks every 1 s).
    assert done.finished_at == START + timedelta(seconds=40)


async def _until(manual: Manual, job_id: str, state: JobState) -> None:
    async for view in manual.stub.WatchJob(jobs_pb2.WatchJobRequest(id=job_id)):
        if convert.state_from_pb(view.state) is state:
            return
    raise AssertionError(f"job {job_id} ended without reaching {state}")


async def _until_deleted(manual: Manual, worker_id: WorkerId) -> None:
    await eventually(lambda: worker_id in manual.provider.deleted)


async def test_worker_created_after_cancel_is_deleted(
    control_plane_factory: MakeControlPlane,
) -> None:
    gate = asyncio.Event()
    created: list[WorkerId] = []

    class SlowProvider(FakeProvider):
        async def create_worker(self, request: WorkerRequest) -> WorkerStatus:
            await gate.wait()
            created.append(request.worker_id)
            return await super().create_worker(request)

    provider = SlowProvider("local")
    plane = await control_plane_factory(providers=[provider])
    async with grpc.aio.insecure_channel(plane.address) as channel:
        stub = job_stub(channel)
        job = await submit(stub, "x")
        await eventually(lambda: plane.workers.active() != [])
        await stub.CancelJob(jobs_pb2.CancelJobRequest(id=job.id))
        assert (await wait_done(stub, job.id)).state is JobState.CANCELLED
        gate.set()
        await eventually(lambda: bool(created) and provider.deleted.count(created[0]) == 2)


async def test_stop_deletes_workers_of_finished_jobs_without_waiting(
    control_plane_factory: MakeControlPlane,
) -> None:
    requests: asyncio.Queue[WorkerRequest] = asyncio.Queue()
    provider = FakeProvider("local", on_create=requests.put_nowait)
    plane = await control_plane_factory(
        providers=[provider], tuning=replace(FAST, release_wait=60.0)
    )
    async with grpc.aio.insecure_channel(plane.address) as channel:
        stub = job_stub(channel)
        job = await submit(stub, "x")
        request = await requests.get()
        agent = WorkerClient(plane.address)
        await agent.register(request.worker_id, token=request.token)
        await agent.expect(AssignJob)
        await agent.send(JobResult(job.id, 0))
        await agent.expect(ResultAck)  # ... and the agent does not hang up
        assert (await wait_done(stub, job.id)).state is JobState.SUCCEEDED
    async with asyncio.timeout(5):
        await plane.stop(grace=30)
    assert request.worker_id in provider.deleted
    await agent.close()


async def ended_with(client: WorkerClient) -> StreamEnded:
    """Read until the server ends the stream; the status it ended it with."""
    with pytest.raises(StreamEnded) as info:
        while True:
            await client.recv()
    return info.value


async def test_streams_that_never_register_are_closed_after_the_deadline(
    control_plane_factory: MakeControlPlane,
) -> None:
    plane = await control_plane_factory(
        providers=[FakeProvider("local")], tuning=replace(FAST, register_deadline=0.2)
    )
    clients = [WorkerClient(plane.address) for _ in range(20)]
    try:
        ends = await asyncio.gather(*(ended_with(c) for c in clients))
    finally:
        for client in clients:
            await client.close()
    assert {e.code for e in ends} == {grpc.StatusCode.DEADLINE_EXCEEDED}
    assert ends[0].details == "no Register within 0.2s; the stream is closed"


async def test_nothing_is_accepted_after_the_result(manual: Manual) -> None:
    job_id, request = await manual.job("x")
    client = manual.client()
    await client.register(request.worker_id, token=request.token)
    await client.expect(AssignJob)
    await client.send(LogBatch((chunk(job_id, 1, b"one\n"),)))
    await client.expect(LogAck)
    await client.send(JobResult(JobId(job_id), 0, last_sequence=1))
    await client.expect(ResultAck)
    await client.send(LogBatch((chunk(job_id, 2, b"late\n"),)))
    ended = await ended_with(client)
    assert ended.code is grpc.StatusCode.FAILED_PRECONDITION
    assert "already sent its result; nothing more is accepted" in (ended.details or "")
    assert output(await logs(manual.stub, job_id))["STDOUT"] == b"one\n"


async def test_an_ended_job_takes_no_new_output_from_a_reconnect(manual: Manual) -> None:
    """Once the result is in and the agent's stream has ended, its worker is released: a
    reconnect with the resume token is refused and the log stays as it was."""
    job_id, request = await manual.job("x")
    client = manual.client()
    resume = await client.register(request.worker_id, token=request.token)
    await client.expect(AssignJob)
    await client.send(LogBatch((chunk(job_id, 1, b"one\n"),)))
    await client.expect(LogAck)
    await client.send(JobResult(JobId(job_id), 0, last_sequence=1))
    await client.expect(ResultAck)
    await client.close()
    await eventually(lambda: manual.plane.workers.get(request.worker_id) is None, within=20)
    with pytest.raises(StreamEnded) as info:
        await manual.client().register(request.worker_id, resume_token=resume)
    assert info.value.code is grpc.StatusCode.PERMISSION_DENIED
    assert info.value.details == f"worker {request.worker_id} is no longer wanted"
    assert output(await logs(manual.stub, job_id))["STDOUT"] == b"one\n"


@pytest.mark.parametrize("sequence", [0, 3, 2**63, 2**64 - 1])
async def test_out_of_range_sequences_are_invalid_argument(manual: Manual, sequence: int) -> None:
    job_id, request = await manual.job("x")
    client = manual.client()
    await client.register(request.worker_id, token=request.token)
    await client.expect(AssignJob)
    await client.send(LogBatch((chunk(job_id, 1, b"one\n"),)))
    await client.expect(LogAck)
    await client.send(LogBatch((chunk(job_id, sequence, b"x"),)))
    ended = await ended_with(client)
    assert ended.code is grpc.StatusCode.INVALID_ARGUMENT
    assert ended.details == (
        f"log sequence {sequence} is out of range: chunks are numbered from 1 without gaps "
        "and the next one here is at most 2"
    )
    assert output(await logs(manual.stub, job_id))["STDOUT"] == b"one\n"


async def test_a_result_naming_an_absurd_sequence_is_refused_before_the_store(
    manual: Manual,
) -> None:
    job_id, request = await manual.job("x")
    client = manual.client()
    await client.register(request.worker_id, token=request.token)
    await client.expect(AssignJob)
    await client.send(JobResult(JobId(job_id), 0, last_sequence=2**64 - 1))
    ended = await ended_with(client)
    assert ended.code is grpc.StatusCode.FAILED_PRECONDITION
    assert f"result names log sequence {2**64 - 1} but only 0 chunks arrived" in (
        ended.details or ""
    )
    view = await manual.stub.GetJob(jobs_pb2.GetJobRequest(id=job_id))
    assert view.state == types_pb2.STARTING


async def test_invalid_utf8_from_a_worker_is_invalid_argument(manual: Manual) -> None:
    job_id, _ = await manual.job("x")
    message = convert_worker(JobStarted(JobId(job_id))).SerializeToString()
    async with grpc.aio.insecure_channel(manual.plane.address) as channel:
        call = channel.stream_stream("/hodei.v1.WorkerService/Connect")(
            iter([message.replace(job_id.encode(), b"j-\xff" + job_id[3:].encode())])
        )
        with pytest.raises(grpc.aio.AioRpcError) as info:
            async for _ in call:
                pass
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details() == "started.job_id: not valid UTF-8"


async def test_a_live_session_cannot_be_taken_over(manual: Manual) -> None:
    """While the agent's stream is alive, neither its one-time token nor its resume token
    opens a second stream; the live one keeps working."""
    job_id, request = await manual.job("x")
    agent = manual.client()
    resume = await agent.register(request.worker_id, token=request.token)
    await agent.expect(AssignJob)
    with pytest.raises(StreamEnded) as info:
        await manual.client().register(request.worker_id, resume_token=resume)
    assert info.value.code is grpc.StatusCode.ALREADY_EXISTS
    assert "already has a live stream" in (info.value.details or "")
    with pytest.raises(StreamEnded) as info:
        await manual.client().register(request.worker_id, token=request.token)
    assert info.value.code is grpc.StatusCode.UNAUTHENTICATED
    assert "already used" in (info.value.details or "")
    await agent.send(LogBatch((chunk(job_id, 1, b"still mine\n"),)))
    assert await agent.expect(LogAck) == LogAck(JobId(job_id), 1)


async def test_a_resume_token_is_good_for_one_reconnect_of_its_worker(manual: Manual) -> None:
    job_id, request = await manual.job("x")
    agent = manual.client()
    first = await agent.register(request.worker_id, token=request.token)
    await agent.expect(AssignJob)
    await agent.send(JobStarted(JobId(job_id)))
    await eventually(lambda: manual.plane.jobs.counts().get(JobState.RUNNING, 0) == 1, within=20)
    await agent.close()  # the stream breaks
    await eventually(lambda: not manual.plane.workers.connected(request.worker_id), within=20)
    again = manual.client()
    second = await again.register(request.worker_id, resume_token=first)
    assert second not in ("", first)
    await again.close()
    await eventually(lambda: not manual.plane.workers.connected(request.worker_id), within=20)
    with pytest.raises(StreamEnded) as info:
        await manual.client().register(request.worker_id, resume_token=first)  # replayed
    assert info.value.code is grpc.StatusCode.UNAUTHENTICATED
    assert "already used" in (info.value.details or "")
    last = manual.client()
    await last.register(request.worker_id, resume_token=second)
    await last.send(JobResult(JobId(job_id), 0, last_sequence=0))
    await last.expect(ResultAck)
    assert (await wait_done(manual.stub, job_id)).state is JobState.SUCCEEDED


async def test_a_bound_worker_registers_only_from_its_running_pods_address(manual: Manual) -> None:
    """A provider that binds workers to an address (pods): the token alone is not enough.
    Not Running yet: refused, retryable, token not consumed; from another address:
    refused; from the pod's address once Running: admitted."""
    job_id, request = await manual.job("x")
    origins = manual.provider.origins
    origins[request.worker_id] = Origin(bound=True, running=False, address="127.0.0.1")
    with pytest.raises(StreamEnded) as info:
        await manual.client().register(request.worker_id, token=request.token)
    assert info.value.code is grpc.StatusCode.UNAVAILABLE
    assert "not reported Running yet" in (info.value.details or "")
    origins[request.worker_id] = Origin(bound=True, running=True, address="10.244.1.7")
    with pytest.raises(StreamEnded) as info:
        await manual.client().register(request.worker_id, token=request.token)
    assert info.value.code is grpc.StatusCode.PERMISSION_DENIED
    assert "does not come from its pod's address" in (info.value.details or "")
    job = await manual.plane.jobs.get(JobId(job_id))
    assert job is not None and job.state is JobState.STARTING  # nothing was handed out
    origins[request.worker_id] = Origin(bound=True, running=True, address="127.0.0.1")
    agent = manual.client()
    await agent.register(request.worker_id, token=request.token)
    assert isinstance(await agent.expect(AssignJob), AssignJob)
