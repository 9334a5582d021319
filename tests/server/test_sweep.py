"""The periodic sweep: workers whose job is unknown or long finished are deleted while the
control plane runs; workers of unfinished jobs are kept."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

import grpc

from hodei.api.v1 import jobs_pb2
from hodei.domain.ids import JobId, WorkerId
from hodei.domain.states import JobState
from hodei.providers.base import WorkerPhase, WorkerRequest, WorkerStatus
from hodei.providers.fake import FakeProvider
from tests.fixtures.control_plane import FAST, MakeControlPlane
from tests.fixtures.stubs import job_stub
from tests.fixtures.waiting import eventually
from tests.server.helpers import submit, wait_done


async def test_sweep_deletes_strays_and_keeps_live_workers(
    control_plane_factory: MakeControlPlane,
) -> None:
    requests: asyncio.Queue[WorkerRequest] = asyncio.Queue()
    provider = FakeProvider("local", on_create=requests.put_nowait)
    tuning = replace(FAST, sweep_interval=timedelta(seconds=0.2))
    plane = await control_plane_factory(providers=[provider], tuning=tuning)
    async with grpc.aio.insecure_channel(plane.address) as channel:
        stub = job_stub(channel)
        live = await submit(stub, "sleep", "60")
        live_worker = (await requests.get()).worker_id
        cancelled = await submit(stub, "true")
        finished_worker = (await requests.get()).worker_id
        await stub.CancelJob(jobs_pb2.CancelJobRequest(id=cancelled.id))
        assert (await wait_done(stub, cancelled.id)).state is JobState.CANCELLED
        # A worker of an unknown job (say, left by a crash before its job was recorded)
        # and the finished job's worker reappearing as if its delete had been lost.
        stray = WorkerId("w-stray")
        provider.adopt(WorkerStatus(stray, JobId("j-unknown"), WorkerPhase.RUNNING))
        provider.adopt(WorkerStatus(finished_worker, JobId(cancelled.id), WorkerPhase.RUNNING))
        deleted_before = provider.deleted.count(finished_worker)

        await eventually(lambda: stray in provider.deleted)
        await eventually(lambda: provider.deleted.count(finished_worker) > deleted_before)
        assert live_worker not in provider.deleted
        current = await stub.GetJob(jobs_pb2.GetJobRequest(id=live.id))
        assert current.worker_id == live_worker
