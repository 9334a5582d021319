"""Jobs end to end through the real gRPC server with scripted agents (FakeProvider)."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from hodei.api import convert
from hodei.api.messages import AssignJob, JobResult, LogAck, LogBatch, ResultAck
from hodei.api.v1 import jobs_pb2, jobs_pb2_grpc, types_pb2
from hodei.domain.jobs import SpecError
from hodei.domain.logs import LogChunk, LogStream
from hodei.domain.states import JobState
from hodei.providers.base import WorkerPhase, WorkerRequest, WorkerStatus
from hodei.providers.fake import FakeProvider
from hodei.server.app import ControlPlane
from tests.fixtures.control_plane import MakeControlPlane
from tests.fixtures.scripted_worker import WorkerClient
from tests.fixtures.stubs import job_stub
from tests.fixtures.waiting import eventually
from tests.server.helpers import logs, output, submit, wait_done, watch


async def test_submitted_job_succeeds_with_its_output(
    job_client: jobs_pb2_grpc.JobServiceStub, fake_provider: FakeProvider
) -> None:
    job = await submit(job_client, "echo", "hello")
    assert job.state is JobState.QUEUED
    done = await wait_done(job_client, job.id)
    assert done.state is JobState.SUCCEEDED
    assert done.exit_code == 0
    assert done.started_at is not None and done.finished_at is not None
    assert output(await logs(job_client, job.id))["STDOUT"] == b"hello\n"
    assert fake_provider.requests[0].job_id == job.id


async def test_non_zero_exit_fails_with_reason(job_client: jobs_pb2_grpc.JobServiceStub) -> None:
    job = await submit(job_client, "exit", "3")
    done = await wait_done(job_client, job.id)
    assert (done.state, done.exit_code, done.reason) == (JobState.FAILED, 3, "NonZeroExit")
    assert done.message == "exit code 3"


async def test_finished_jobs_worker_is_deleted(
    job_client: jobs_pb2_grpc.JobServiceStub,
    fake_provider: FakeProvider,
    control_plane: ControlPlane,
) -> None:
    job = await submit(job_client, "echo", "x")
    done = await wait_done(job_client, job.id)
    assert done.worker_id is not None
    await eventually(lambda: done.worker_id in fake_provider.deleted)
    await eventually(lambda: control_plane.workers.active() == [])


async def test_empty_command_is_invalid_argument(job_client: jobs_pb2_grpc.JobServiceStub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await job_client.SubmitJob(jobs_pb2.SubmitJobRequest())
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "command" in info.value.details()


async def test_unknown_provider_names_the_accepted_ones(
    job_client: jobs_pb2_grpc.JobServiceStub,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await submit(job_client, "echo", provider="kubernetes")
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "'kubernetes'" in info.value.details() and "local" in info.value.details()


async def test_a_spec_the_provider_cannot_run_is_refused_at_submit(
    job_client: jobs_pb2_grpc.JobServiceStub, fake_provider: FakeProvider
) -> None:
    fake_provider.spec_error = SpecError("profile 'gpu' does not exist; profiles: default")
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await submit(job_client, "echo")
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details() == "profile 'gpu' does not exist; profiles: default"
    assert fake_provider.requests == []  # nothing recorded, nothing started
    listed = await job_client.ListJobs(jobs_pb2.ListJobsRequest())
    assert list(listed.jobs) == []


async def test_unknown_job_is_not_found(job_client: jobs_pb2_grpc.JobServiceStub) -> None:
    for call in (
        job_client.GetJob(jobs_pb2.GetJobRequest(id="j-nope")),
        job_client.CancelJob(jobs_pb2.CancelJobRequest(id="j-nope")),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await call
        assert info.value.code() is grpc.StatusCode.NOT_FOUND


async def test_list_jobs_filters_by_state(job_client: jobs_pb2_grpc.JobServiceStub) -> None:
    job = await submit(job_client, "echo", "a")
    await wait_done(job_client, job.id)
    failed = await submit(job_client, "exit", "1")
    await wait_done(job_client, failed.id)
    reply = await job_client.ListJobs(jobs_pb2.ListJobsRequest(states=[types_pb2.SUCCEEDED]))
    assert [j.id for j in reply.jobs] == [job.id]
    reply = await job_client.ListJobs(jobs_pb2.ListJobsRequest())
    assert [j.id for j in reply.jobs] == [failed.id, job.id]  # newest first


async def test_control_plane_address_is_loopback(control_plane: ControlPlane) -> None:
    assert control_plane.address == f"127.0.0.1:{control_plane.grpc_port}"
    assert control_plane.grpc_port > 0 and control_plane.http_port > 0


async def test_watch_job_sees_every_state(job_client: jobs_pb2_grpc.JobServiceStub) -> None:
    job = await submit(job_client, "echo", "x")
    views = await watch(job_client, job.id)
    states = [convert.state_from_pb(v.state) for v in views]
    assert any(v.waiting_reason for v in views if v.state == types_pb2.STARTING)
    states = [s for i, s in enumerate(states) if i == 0 or states[i - 1] is not s]
    # Each state in order (waiting reasons add views within a state; the first view may
    # already be past QUEUED).
    expected = [JobState.QUEUED, JobState.STARTING, JobState.RUNNING, JobState.SUCCEEDED]
    assert states == expected[expected.index(states[0]) :]


async def test_follow_streams_live_logs_until_the_job_ends(
    control_plane_factory: MakeControlPlane,
) -> None:
    requests: asyncio.Queue[WorkerRequest] = asyncio.Queue()
    provider = FakeProvider("local", on_create=requests.put_nowait)
    plane = await control_plane_factory(providers=[provider])
    async with grpc.aio.insecure_channel(plane.address) as channel:
        stub = job_stub(channel)
        job = await submit(stub, "x")
        request = await requests.get()
        agent = WorkerClient(plane.address)
        await agent.register(request.worker_id, token=request.token)
        await agent.expect(AssignJob)
        await agent.send(LogBatch((LogChunk(job.id, 1, LogStream.STDOUT, b"stored\n"),)))
        await agent.expect(LogAck)
        follow = stub.StreamLogs(jobs_pb2.StreamLogsRequest(job_id=job.id, follow=True))
        first = await follow.read()
        assert first.data == b"stored\n"
        await agent.send(LogBatch((LogChunk(job.id, 2, LogStream.STDERR, b"live\n"),)))
        second = await follow.read()
        assert (second.sequence, second.data) == (2, b"live\n")
        await agent.expect(LogAck)
        await agent.send(JobResult(job.id, 0, last_sequence=2))
        await agent.expect(ResultAck)
        assert await follow.read() is grpc.aio.EOF  # the job ended: the stream ends
        await agent.close()
        later = await logs(stub, job.id, start=2)
    assert [c.sequence for c in later] == [2]


async def test_list_workers_shows_provider_state_name_and_age(
    control_plane_factory: MakeControlPlane,
) -> None:
    requests: asyncio.Queue[WorkerRequest] = asyncio.Queue()
    provider = FakeProvider("local", on_create=requests.put_nowait)
    plane = await control_plane_factory(providers=[provider])
    async with grpc.aio.insecure_channel(plane.address) as channel:
        stub = job_stub(channel)
        job = await submit(stub, "x")
        request = await requests.get()
        await provider.push(
            WorkerStatus(request.worker_id, job.id, WorkerPhase.RUNNING, name="pid 77")
        )
        reply = await stub.ListWorkers(jobs_pb2.ListWorkersRequest())
    [worker] = reply.workers
    assert (worker.id, worker.job_id, worker.provider, worker.state, worker.name) == (
        request.worker_id,
        job.id,
        "local",
        "RUNNING",
        "pid 77",
    )
    assert convert.parse_time(worker.created_at) is not None


async def test_unknown_provider_is_refused_naming_the_enabled_ones(
    job_client: jobs_pb2_grpc.JobServiceStub,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await submit(job_client, "true", provider="nope")
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details() == "provider 'nope' is unknown or disabled; accepted: local"


async def test_a_job_held_back_by_capacity_says_it_waits_for_a_slot(
    control_plane_factory: MakeControlPlane,
) -> None:
    provider = FakeProvider("local", capacity=1)  # workers that never connect: slot stays taken
    plane = await control_plane_factory(providers=[provider])
    async with grpc.aio.insecure_channel(plane.address) as channel:
        stub = job_stub(channel)
        first = await submit(stub, "hang")
        second = await submit(stub, "true")
        views = stub.WatchJob(jobs_pb2.WatchJobRequest(id=second.id))
        async for view in views:
            if view.waiting_reason:
                break
        assert view.state == types_pb2.QUEUED
        assert view.waiting_reason == "waiting for a worker slot: all 1 local workers are busy"
        views.cancel()
        stored = await plane.jobs.get(second.id)
        assert stored is not None and stored.waiting_reason == view.waiting_reason
        first_view = await stub.GetJob(jobs_pb2.GetJobRequest(id=first.id))
        assert first_view.state == types_pb2.STARTING
