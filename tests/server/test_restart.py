"""Restart recovery: a control plane stopped without draining, and a new one on the
same SQLite file, must leave no job stuck and no stray worker behind."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc

from hodei.api.messages import (
    AssignJob,
    CancelJob,
    JobResult,
    JobStarted,
    LogAck,
    LogBatch,
    ResultAck,
)
from hodei.api.v1 import jobs_pb2, types_pb2
from hodei.domain.ids import JobId, WorkerId
from hodei.domain.logs import LogChunk, LogStream
from hodei.domain.states import JobState
from hodei.domain.workers import WorkerRecord
from hodei.providers.base import WorkerPhase, WorkerRequest, WorkerStatus
from hodei.providers.fake import FakeProvider
from hodei.store import SqliteStore
from tests.fixtures.control_plane import FAST, MakeControlPlane
from tests.fixtures.scripted_worker import WorkerClient, scripted_agent
from tests.fixtures.stubs import job_stub
from tests.fixtures.waiting import eventually
from tests.server.helpers import logs, output, submit, wait_done, wait_state, waiting_for_quota


async def test_jobs_survive_a_restart(control_plane_factory: MakeControlPlane) -> None:
    requests: asyncio.Queue[WorkerRequest] = asyncio.Queue()
    first = FakeProvider("local", capacity=3, on_create=requests.put_nowait)
    plane = await control_plane_factory(providers=[first])
    async with grpc.aio.insecure_channel(plane.address) as channel:
        stub = job_stub(channel)
        reconnecting = await submit(stub, "a")
        vanished = await submit(stub, "b")
        silent = await submit(stub, "c", max_attempts=2)
        queued = await submit(stub, "echo", "late")
        got = {r.job_id: r for r in [await requests.get() for _ in range(3)]}
    # The first job's agent registers, starts and sends a log chunk before the crash.
    agent = WorkerClient(plane.address)
    resume = await agent.register(got[reconnecting.id].worker_id, token=got[reconnecting.id].token)
    await agent.expect(AssignJob)
    await agent.send(JobStarted(JobId(reconnecting.id)))
    first_chunk = LogChunk(JobId(reconnecting.id), 1, LogStream.STDOUT, b"before\n")
    await agent.send(LogBatch((first_chunk,)))
    await agent.expect(LogAck)
    silent_agent = WorkerClient(plane.address)
    await silent_agent.register(got[silent.id].worker_id, token=got[silent.id].token)
    await plane.stop(grace=0)
    await agent.close()
    await silent_agent.close()

    second = FakeProvider("local", capacity=3, on_create=scripted_agent)
    for job in (reconnecting, silent):  # still running; the vanished job's worker is gone
        request = got[job.id]
        second.adopt(WorkerStatus(request.worker_id, request.job_id, WorkerPhase.RUNNING))
    stray = WorkerId("w-stray")
    second.adopt(WorkerStatus(stray, JobId("j-unknown"), WorkerPhase.RUNNING))
    plane = await control_plane_factory(
        providers=[second], tuning=replace(FAST, reconnect_grace=timedelta(seconds=0.5))
    )
    assert stray in second.deleted

    agent = WorkerClient(plane.address)
    assert await agent.register(got[reconnecting.id].worker_id, resume_token=resume) != resume
    second_chunk = LogChunk(JobId(reconnecting.id), 2, LogStream.STDOUT, b"after\n")
    await agent.send(LogBatch((first_chunk, second_chunk)))  # re-sent: idempotent
    assert await agent.expect(LogAck) == LogAck(JobId(reconnecting.id), 2)
    await agent.send(JobResult(JobId(reconnecting.id), 0, last_sequence=2))
    await agent.expect(ResultAck)
    await agent.close()

    async with grpc.aio.insecure_channel(plane.address) as channel:
        stub = job_stub(channel)
        finished = await wait_done(stub, reconnecting.id)
        assert finished.state is JobState.SUCCEEDED
        assert output(await logs(stub, reconnecting.id))["STDOUT"] == b"before\nafter\n"
        lost = await wait_done(stub, vanished.id)
        # Its worker vanished during the restart: a disruption, so it ran again ("b" exits 127).
        assert (lost.state, lost.attempt, lost.reason) == (JobState.FAILED, 2, "NonZeroExit")
        assert [(a.reason, a.disruption) for a in lost.attempts] == [
            ("WorkerLost", True),
            ("NonZeroExit", False),
        ]
        # Its agent never came back within the grace: retried, and the retry succeeds.
        retried = await wait_done(stub, silent.id)
        assert (retried.state, retried.attempt) == (JobState.FAILED, 2)  # "c" exits 127
        assert got[silent.id].worker_id in second.deleted
        late = await wait_done(stub, queued.id)
        assert late.state is JobState.SUCCEEDED
    await second.aclose_workers()


async def test_retry_keeps_one_gap_free_log(control_plane_factory: MakeControlPlane) -> None:
    requests: asyncio.Queue[WorkerRequest] = asyncio.Queue()
    provider = FakeProvider("local", on_create=requests.put_nowait)
    plane = await control_plane_factory(providers=[provider])
    async with grpc.aio.insecure_channel(plane.address) as channel:
        stub = job_stub(channel)
        job = await submit(stub, "x", max_attempts=2)
        for attempt in (1, 2):
            request = await requests.get()
            agent = WorkerClient(plane.address)
            await agent.register(request.worker_id, token=request.token)
            await agent.expect(AssignJob)
            await agent.send(
                LogBatch((LogChunk(job.id, 1, LogStream.STDOUT, f"try {attempt}\n".encode()),))
            )
            assert await agent.expect(LogAck) == LogAck(job.id, 1)  # in the agent's numbering
            if attempt == 1:
                await agent.close()
                await provider.push(WorkerStatus(request.worker_id, job.id, WorkerPhase.GONE))
            else:
                await agent.send(JobResult(job.id, 0, last_sequence=1))
                await agent.expect(ResultAck)
                await agent.close()
        done = await wait_done(stub, job.id)
        chunks = await logs(stub, job.id)
    assert done.state is JobState.SUCCEEDED and done.attempt == 2
    assert [c.sequence for c in chunks] == [1, 2]
    assert output(chunks)["STDOUT"] == b"try 1\ntry 2\n"


async def test_orphan_worker_records_do_not_hold_capacity(
    control_plane_factory: MakeControlPlane, tmp_path: Path
) -> None:
    store = SqliteStore(tmp_path / "hodei.db")
    await store.open()
    orphan = WorkerRecord(WorkerId("w-orphan"), JobId("j-gone"), "local", 1, datetime.now(UTC))
    await store.save_worker(orphan)
    await store.close()
    provider = FakeProvider("local", capacity=1, on_create=scripted_agent)
    plane = await control_plane_factory(providers=[provider])
    assert plane.workers.active() == []
    async with grpc.aio.insecure_channel(plane.address) as channel:
        stub = job_stub(channel)
        done = await wait_done(stub, (await submit(stub, "echo", "hi")).id)
    assert done.state is JobState.SUCCEEDED
    await provider.aclose_workers()


async def test_a_cancel_the_agent_never_heard_is_enforced_after_a_restart(
    control_plane_factory: MakeControlPlane,
) -> None:
    requests: asyncio.Queue[WorkerRequest] = asyncio.Queue()
    first = FakeProvider("local", on_create=requests.put_nowait)
    plane = await control_plane_factory(providers=[first])
    async with grpc.aio.insecure_channel(plane.address) as channel:
        stub = job_stub(channel)
        job = await submit(stub, "sleep", "60")
        request = await requests.get()
        agent = WorkerClient(plane.address)  # connected, but it will never act on a cancel
        await agent.register(request.worker_id, token=request.token)
        await agent.expect(AssignJob)
        await agent.send(JobStarted(JobId(job.id)))
        await wait_state(stub, job.id, JobState.RUNNING)
        answered = await stub.CancelJob(jobs_pb2.CancelJobRequest(id=job.id))
        stored = await plane.store.get_job(JobId(job.id))
    # Persisted before CancelJob answered: the job still runs, the request is on disk.
    assert answered.state == types_pb2.RUNNING
    assert stored is not None and stored.cancel_requested_at is not None
    await plane.stop(grace=0)
    await agent.close()

    second = FakeProvider("local")
    second.adopt(WorkerStatus(request.worker_id, request.job_id, WorkerPhase.RUNNING))
    plane = await control_plane_factory(providers=[second])
    async with grpc.aio.insecure_channel(plane.address) as channel:
        stub = job_stub(channel)
        done = await wait_done(stub, job.id)
    assert (done.state, done.reason) == (JobState.CANCELLED, "Cancelled")
    await eventually(lambda: request.worker_id in second.deleted)


async def test_a_result_after_an_unheard_cancel_still_ends_cancelled(
    control_plane_factory: MakeControlPlane,
) -> None:
    requests: asyncio.Queue[WorkerRequest] = asyncio.Queue()
    plane = await control_plane_factory(
        providers=[FakeProvider("local", on_create=requests.put_nowait)]
    )
    async with grpc.aio.insecure_channel(plane.address) as channel:
        stub = job_stub(channel)
        job = await submit(stub, "true")
        request = await requests.get()
        agent = WorkerClient(plane.address)
        await agent.register(request.worker_id, token=request.token)
        await agent.expect(AssignJob)
        await agent.send(JobStarted(JobId(job.id)))
        await wait_state(stub, job.id, JobState.RUNNING)
        await stub.CancelJob(jobs_pb2.CancelJobRequest(id=job.id))
        await agent.expect(CancelJob)  # ignored: the job runs to completion regardless
        await agent.send(JobResult(JobId(job.id), 0))
        await agent.expect(ResultAck)
        await agent.close()
        done = await wait_done(stub, job.id)
    assert (done.state, done.exit_code, done.reason) == (JobState.CANCELLED, 0, "Cancelled")


async def test_job_waiting_for_quota_is_queued_afresh_after_a_restart(
    control_plane_factory: MakeControlPlane,
) -> None:
    requests: asyncio.Queue[WorkerRequest] = asyncio.Queue()
    first = FakeProvider("local", on_create=requests.put_nowait)
    plane = await control_plane_factory(providers=[first])
    async with grpc.aio.insecure_channel(plane.address) as channel:
        stub = job_stub(channel)
        job = await submit(stub, "echo", "hi")
        request = await requests.get()
        await first.push(waiting_for_quota(request))
        await wait_state(stub, job.id, JobState.QUEUED)
    await plane.stop(grace=0)  # its create, still waiting, dies with it

    second = FakeProvider("local", on_create=scripted_agent)
    plane = await control_plane_factory(providers=[second])
    async with grpc.aio.insecure_channel(plane.address) as channel:
        done = await wait_done(job_stub(channel), job.id)
    assert (done.state, done.attempt, done.attempts[0].reason) == (
        JobState.SUCCEEDED,
        1,
        "Completed",
    )
    assert [r.worker_id for r in second.requests] != [request.worker_id]  # a new worker
    await second.aclose_workers()
