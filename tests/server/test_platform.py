"""Provider statuses, retries, concurrency, API token and the HTTP endpoints."""

from __future__ import annotations

import asyncio

import aiohttp
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from hodei.api import convert
from hodei.api.messages import AssignJob, JobResult, JobStarted, ResultAck
from hodei.api.v1 import jobs_pb2, jobs_pb2_grpc
from hodei.domain import reasons
from hodei.domain.ids import JobId
from hodei.domain.jobs import Job
from hodei.domain.reasons import Reason
from hodei.domain.states import JobState
from hodei.providers.base import Health, ProviderError, WorkerPhase, WorkerRequest, WorkerStatus
from hodei.providers.fake import FakeProvider
from hodei.server.app import ControlPlane
from hodei.server.auth import ListenError
from hodei.server.http import readiness
from hodei.store import MemoryStore, store_from_url
from tests.fixtures.certs import TlsFiles
from tests.fixtures.control_plane import MakeControlPlane
from tests.fixtures.scripted_worker import WorkerClient, scripted_agent
from tests.fixtures.stubs import job_stub
from tests.fixtures.waiting import eventually
from tests.server.helpers import submit, wait_done, waiting_for_quota


async def test_pending_diagnosis_becomes_waiting_reason_then_failure(
    control_plane_factory: MakeControlPlane,
) -> None:
    requests: asyncio.Queue[WorkerRequest] = asyncio.Queue()
    provider = FakeProvider("kubernetes", on_create=requests.put_nowait)
    plane = await control_plane_factory(providers=[provider])
    async with grpc.aio.insecure_channel(plane.address) as channel:
        stub = job_stub(channel)
        job = await submit(stub, "x")
        stream = stub.WatchJob(jobs_pb2.WatchJobRequest(id=job.id))
        seen = [await stream.read()]  # the watch is subscribed from here on
        request = await requests.get()
        await provider.push(
            WorkerStatus(
                request.worker_id,
                request.job_id,
                WorkerPhase.PENDING,
                reason=Reason("Unschedulable"),
                message="0/1 nodes are available",
            )
        )
        # The reason is one persisted field of the job, shown by every read, not only watches.
        shown = await stub.GetJob(jobs_pb2.GetJobRequest(id=job.id))
        assert shown.waiting_reason == "Unschedulable: 0/1 nodes are available"
        stored = await plane.store.get_job(JobId(job.id))
        assert stored is not None
        assert stored.waiting_reason == "Unschedulable: 0/1 nodes are available"
        await provider.push(
            WorkerStatus(
                request.worker_id,
                request.job_id,
                WorkerPhase.FAILED,
                reason=Reason("Unschedulable"),
                message="gave up after 300s",
            )
        )
        while (view := await stream.read()) is not grpc.aio.EOF:
            seen.append(view)
    assert "Unschedulable: 0/1 nodes are available" in [v.waiting_reason for v in seen]
    assert (seen[-1].reason, seen[-1].message) == ("Unschedulable", "gave up after 300s")
    assert seen[-1].waiting_reason == ""


async def test_lost_worker_is_retried_on_the_platform_budget(
    control_plane_factory: MakeControlPlane,
) -> None:
    requests: asyncio.Queue[WorkerRequest] = asyncio.Queue()
    provider = FakeProvider("local", on_create=requests.put_nowait)
    plane = await control_plane_factory(providers=[provider], env={"HODEI_PLATFORM_RETRIES": "2"})
    async with grpc.aio.insecure_channel(plane.address) as channel:
        stub = job_stub(channel)
        job = await submit(stub, "x")  # max_attempts 1: disruptions do not count
        for _ in range(3):
            request = await requests.get()
            await provider.push(WorkerStatus(request.worker_id, request.job_id, WorkerPhase.GONE))
        done = await wait_done(stub, job.id)
    assert (done.state, done.reason, done.attempt) == (JobState.FAILED, "WorkerLost", 3)
    assert done.message is not None and done.message.endswith(
        "not retried: 2 disrupted attempts before (HODEI_PLATFORM_RETRIES)"
    )
    assert [(a.number, a.reason, a.disruption) for a in done.attempts] == [
        (1, "WorkerLost", True),
        (2, "WorkerLost", True),
        (3, "WorkerLost", False),  # the last one ended the job: not retried
    ]
    assert len(provider.requests) == 3


async def test_sigterm_it_did_not_send_retries_the_job_with_the_eviction_reason(
    control_plane_factory: MakeControlPlane,
) -> None:
    requests: asyncio.Queue[WorkerRequest] = asyncio.Queue()
    provider = FakeProvider("kubernetes", on_create=requests.put_nowait)
    plane = await control_plane_factory(providers=[provider])
    async with grpc.aio.insecure_channel(plane.address) as channel:
        stub = job_stub(channel)
        job = await submit(stub, "echo", "hi")
        first = await requests.get()
        client = WorkerClient(first.server_address)
        try:
            await client.register(first.worker_id, token=first.token)
            assign = await client.expect(AssignJob)
            await client.send(JobStarted(assign.job_id, pid=1))
            await provider.push(
                WorkerStatus(
                    first.worker_id,
                    first.job_id,
                    WorkerPhase.RUNNING,
                )
            )
            provider.adopt(  # seen by the provider, not yet delivered to the controller
                WorkerStatus(
                    first.worker_id,
                    first.job_id,
                    WorkerPhase.FAILED,
                    reason=Reason("Evicted"),
                    message="EvictionByEvictionAPI: Eviction API: evicting",
                )
            )
            # The agent got SIGTERM before the provider's status reached the controller.
            await client.send(JobResult(assign.job_id, 143, terminated=True))
            await client.expect(ResultAck)
        finally:
            await client.close()
        second = await requests.get()
        await scripted_agent(second)
        done = await wait_done(stub, job.id)
    assert (done.state, done.attempt) == (JobState.SUCCEEDED, 2)
    assert [(a.reason, a.message, a.disruption) for a in done.attempts] == [
        ("Evicted", "EvictionByEvictionAPI: Eviction API: evicting", True),
        ("Completed", None, False),
    ]


async def test_exited_worker_diagnosis_wins_over_worker_lost(
    control_plane_factory: MakeControlPlane,
) -> None:
    requests: asyncio.Queue[WorkerRequest] = asyncio.Queue()
    provider = FakeProvider("local", on_create=requests.put_nowait)
    plane = await control_plane_factory(providers=[provider])
    async with grpc.aio.insecure_channel(plane.address) as channel:
        stub = job_stub(channel)
        job = await submit(stub, "x", max_attempts=3)
        request = await requests.get()
        await provider.push(
            WorkerStatus(
                request.worker_id,
                request.job_id,
                WorkerPhase.EXITED,
                reason=Reason("OOMKilled"),
                message="limit 128Mi",
                exit_code=137,
            )
        )
        done = await wait_done(stub, job.id)
    assert (done.state, done.reason, done.message) == (JobState.FAILED, "OOMKilled", "limit 128Mi")
    assert done.exit_code == 137  # the container's code, so `hodei run` exits 137 like the shell
    assert done.attempt == 1  # OOMKilled is not retried


async def test_provider_create_error_fails_job(control_plane_factory: MakeControlPlane) -> None:
    provider = FakeProvider("local")
    provider.create_error = ProviderError("quota exceeded", reason=Reason("ProviderError"))
    plane = await control_plane_factory(providers=[provider])
    async with grpc.aio.insecure_channel(plane.address) as channel:
        stub = job_stub(channel)
        done = await wait_done(stub, (await submit(stub, "x")).id)
    assert (done.state, done.reason, done.message) == (
        JobState.FAILED,
        "ProviderError",
        "quota exceeded",
    )
    await eventually(lambda: plane.workers.active() == [])


async def test_capacity_queues_the_rest_and_all_complete(
    control_plane_factory: MakeControlPlane,
) -> None:
    running = 0
    peak = 0

    async def agent(request: WorkerRequest) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        try:
            await scripted_agent(request)
        finally:
            running -= 1

    provider = FakeProvider("local", capacity=3, on_create=agent)
    plane = await control_plane_factory(providers=[provider])
    async with grpc.aio.insecure_channel(plane.address) as channel:
        stub = job_stub(channel)
        jobs = [await submit(stub, "sleep", "0.02") for _ in range(12)]
        done = [await wait_done(stub, job.id) for job in jobs]
    assert all(job.state is JobState.SUCCEEDED for job in done)
    assert peak <= 3


async def test_200_jobs_submitted_together_all_complete(
    control_plane_factory: MakeControlPlane,
) -> None:
    provider = FakeProvider("local", on_create=scripted_agent)
    plane = await control_plane_factory(providers=[provider])
    async with grpc.aio.insecure_channel(plane.address) as channel:
        stub = job_stub(channel)
        jobs = await asyncio.gather(*(submit(stub, "echo", str(i)) for i in range(200)))
        done = await asyncio.gather(*(wait_done(stub, job.id) for job in jobs))
    assert [job.state for job in done] == [JobState.SUCCEEDED] * 200
    await provider.aclose_workers()


async def test_api_token_is_required_when_set(control_plane_factory: MakeControlPlane) -> None:
    provider = FakeProvider("local", on_create=scripted_agent)
    plane = await control_plane_factory(providers=[provider], env={"HODEI_API_TOKEN": "s3cret"})
    async with grpc.aio.insecure_channel(plane.address) as channel:
        stub = job_stub(channel)
        for metadata in ((), (("authorization", "Bearer wrong"),)):
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await stub.ListJobs(jobs_pb2.ListJobsRequest(), metadata=metadata)
            assert info.value.code() is grpc.StatusCode.UNAUTHENTICATED
            assert "HODEI_API_TOKEN" in info.value.details()
        with pytest.raises(grpc.aio.AioRpcError) as info:
            async for _ in stub.WatchJob(jobs_pb2.WatchJobRequest(id="j-x")):
                pass
        assert info.value.code() is grpc.StatusCode.UNAUTHENTICATED
        good = (("authorization", "Bearer s3cret"),)
        job = await submit(stub, "echo", "ok", metadata=good)
        reply = await stub.GetJob(jobs_pb2.GetJobRequest(id=job.id), metadata=good)
        assert reply.id == job.id
        # Health checks stay open for probes.
        health = health_pb2_grpc.HealthStub(channel)
        answer = await health.Check(health_pb2.HealthCheckRequest(service=""))
        assert answer.status == health_pb2.HealthCheckResponse.SERVING


async def test_refuses_open_address_without_tls_or_token(
    control_plane_factory: MakeControlPlane, tls_files: TlsFiles
) -> None:
    with pytest.raises(ListenError) as info:
        await control_plane_factory(
            providers=[FakeProvider()], env={"HODEI_GRPC_ADDRESS": "0.0.0.0:0"}
        )
    for name in ("HODEI_TLS_CERT_FILE", "HODEI_GRPC_ADDRESS", "HODEI_INSECURE"):
        assert name in str(info.value)
    with pytest.raises(ListenError) as info:
        await control_plane_factory(
            providers=[FakeProvider()],
            env={**tls_files.server_env(), "HODEI_GRPC_ADDRESS": "0.0.0.0:0"},
        )
    for name in ("HODEI_API_TOKEN", "HODEI_TLS_CLIENT_CA_FILE", "HODEI_INSECURE"):
        assert name in str(info.value)


async def test_health_service_reports_serving(control_plane: ControlPlane) -> None:
    async with grpc.aio.insecure_channel(control_plane.address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "hodei.v1.JobService", "hodei.v1.WorkerService"):
            answer = await health.Check(health_pb2.HealthCheckRequest(service=service))
            assert answer.status == health_pb2.HealthCheckResponse.SERVING


async def test_http_endpoints(
    control_plane: ControlPlane,
    job_client: jobs_pb2_grpc.JobServiceStub,
    fake_provider: FakeProvider,
) -> None:
    done = await wait_done(job_client, (await submit(job_client, "exit", "2")).id)
    assert done.state is JobState.FAILED
    base = f"http://127.0.0.1:{control_plane.http_port}"
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/healthz") as reply:
            assert reply.status == 200
        async with http.get(f"{base}/readyz") as reply:
            assert reply.status == 200
        fake_provider.health_result = Health(False, "API server unreachable")
        async with http.get(f"{base}/readyz") as reply:
            assert reply.status == 503
            assert "provider local: failing: API server unreachable" in await reply.text()
        async with http.get(f"{base}/metrics") as reply:
            text = await reply.text()
    assert 'hodei_jobs{state="FAILED"} 1.0' in text
    assert "hodei_queue_depth 0.0" in text
    assert 'hodei_dispatch_latency_seconds_count{phase="RUNNING"} 1.0' in text
    assert 'hodei_worker_start_latency_seconds_count{provider="local"} 1.0' in text
    assert 'hodei_jobs_failed_total{reason="NonZeroExit"} 1.0' in text


async def test_stop_refuses_new_jobs_and_lets_running_ones_finish(
    control_plane_factory: MakeControlPlane,
) -> None:
    provider = FakeProvider("local", on_create=scripted_agent)
    plane = await control_plane_factory(providers=[provider])
    async with grpc.aio.insecure_channel(plane.address) as channel:
        stub = job_stub(channel)
        job = await submit(stub, "sleep", "0.3")
        async for view in stub.WatchJob(jobs_pb2.WatchJobRequest(id=job.id)):
            if view.started_at:
                break
        stopping = asyncio.create_task(plane.stop(grace=5))
        await asyncio.sleep(0)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await submit(stub, "echo")
        assert info.value.code() is grpc.StatusCode.UNAVAILABLE
        await stopping
    stored = await _reopen_job(plane, job.id)
    assert stored.state is JobState.SUCCEEDED


async def _reopen_job(plane: ControlPlane, job_id: JobId) -> Job:
    store = store_from_url(plane.settings.database_url)
    await store.open()
    try:
        job = await store.get_job(job_id)
    finally:
        await store.close()
    assert job is not None
    return job


async def test_readiness_reports_a_closed_store() -> None:
    store = MemoryStore()
    await store.open()
    provider = FakeProvider()
    assert await readiness(store, [provider]) == (True, "store: ok\nprovider local: ok\n")
    await store.close()
    ready, report = await readiness(store, [provider])
    assert not ready and "store: store is closed" in report


async def test_job_waiting_for_quota_is_queued_with_the_reason_then_starts(
    control_plane_factory: MakeControlPlane,
) -> None:
    requests: asyncio.Queue[WorkerRequest] = asyncio.Queue()
    provider = FakeProvider("kubernetes", on_create=requests.put_nowait)
    plane = await control_plane_factory(providers=[provider])
    async with grpc.aio.insecure_channel(plane.address) as channel:
        stub = job_stub(channel)
        job = await submit(stub, "echo", "hi")
        request = await requests.get()
        waiting = (
            "waiting for quota: exceeded quota: q, requested: pods=1, used: pods=1, limited: pods=1"
        )
        await provider.push(
            WorkerStatus(
                request.worker_id,
                request.job_id,
                WorkerPhase.PENDING,
                reason=reasons.QUOTA_EXCEEDED,
                message=waiting,
            )
        )
        queued = convert.job_from_pb(await stub.GetJob(jobs_pb2.GetJobRequest(id=job.id)))
        assert (queued.state, queued.waiting_reason) == (JobState.QUEUED, waiting)
        assert queued.worker_id == request.worker_id  # its create keeps trying
        await provider.push(WorkerStatus(request.worker_id, request.job_id, WorkerPhase.PENDING))
        started = convert.job_from_pb(await stub.GetJob(jobs_pb2.GetJobRequest(id=job.id)))
        assert started.state is JobState.STARTING
        await scripted_agent(request)
        done = await wait_done(stub, job.id)
    assert (done.state, done.attempt) == (JobState.SUCCEEDED, 1)
    assert len(provider.requests) == 1  # the queued job was not dispatched twice


async def test_cancelling_a_job_waiting_for_quota_deletes_its_worker(
    control_plane_factory: MakeControlPlane,
) -> None:
    requests: asyncio.Queue[WorkerRequest] = asyncio.Queue()
    provider = FakeProvider("kubernetes", on_create=requests.put_nowait)
    plane = await control_plane_factory(providers=[provider])
    async with grpc.aio.insecure_channel(plane.address) as channel:
        stub = job_stub(channel)
        job = await submit(stub, "echo", "hi")
        request = await requests.get()
        await provider.push(waiting_for_quota(request))
        cancelled = await stub.CancelJob(jobs_pb2.CancelJobRequest(id=job.id))
        assert convert.job_from_pb(cancelled).state is JobState.CANCELLED
    # Deleting the worker is what stops its provider's create from trying again.
    await eventually(lambda: request.worker_id in provider.deleted)
    await eventually(lambda: plane.workers.active() == [])
