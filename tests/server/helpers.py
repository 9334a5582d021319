"""Client-side helpers for control-plane tests: submit a job, wait for its end, read logs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import aiohttp

from hodei.api import convert
from hodei.api.v1 import jobs_pb2, jobs_pb2_grpc, types_pb2
from hodei.domain import reasons
from hodei.domain.jobs import Job, JobSpec
from hodei.domain.logs import LogChunk
from hodei.domain.states import JobState
from hodei.domain.workers import WorkerPhase
from hodei.providers.base import WorkerRequest, WorkerStatus
from hodei.providers.local import LocalProvider
from hodei.server.app import ControlPlane
from tests.fixtures.waiting import eventually as eventually  # the one helper; old imports


async def submit(
    stub: jobs_pb2_grpc.JobServiceStub,
    *command: str,
    metadata: tuple[tuple[str, str], ...] = (),
    **spec: object,
) -> Job:
    message = convert.spec_to_pb(JobSpec(command=tuple(command), **spec))  # type: ignore[arg-type]
    reply = await stub.SubmitJob(jobs_pb2.SubmitJobRequest(spec=message), metadata=metadata)
    return convert.job_from_pb(reply)


async def watch(stub: jobs_pb2_grpc.JobServiceStub, job_id: str) -> list[types_pb2.Job]:
    """Every view WatchJob sends until the job ends."""
    return [view async for view in stub.WatchJob(jobs_pb2.WatchJobRequest(id=job_id))]


async def wait_done(stub: jobs_pb2_grpc.JobServiceStub, job_id: str) -> Job:
    views = await watch(stub, job_id)
    return convert.job_from_pb(views[-1])


async def logs(
    stub: jobs_pb2_grpc.JobServiceStub, job_id: str, *, follow: bool = False, start: int = 0
) -> list[LogChunk]:
    request = jobs_pb2.StreamLogsRequest(job_id=job_id, follow=follow, from_sequence=start)
    return [convert.chunk_from_pb(c) async for c in stub.StreamLogs(request)]


def output(chunks: list[LogChunk]) -> Mapping[str, bytes]:
    out: dict[str, bytes] = {"STDOUT": b"", "STDERR": b""}
    for chunk in chunks:
        out[chunk.stream.value] += chunk.data
    return out


async def wait_state(stub: jobs_pb2_grpc.JobServiceStub, job_id: str, state: JobState) -> Job:
    """The job as soon as WatchJob shows it in ``state`` (AssertionError if it ends first)."""
    async for view in stub.WatchJob(jobs_pb2.WatchJobRequest(id=job_id)):
        job = convert.job_from_pb(view)
        if job.state is state:
            return job
    raise AssertionError(f"job {job_id} ended without reaching {state.value}")


def waiting_for_quota(request: WorkerRequest) -> WorkerStatus:
    """The status a Kubernetes provider reports while a worker's pod create waits for quota."""
    return WorkerStatus(
        request.worker_id,
        request.job_id,
        WorkerPhase.PENDING,
        reason=reasons.QUOTA_EXCEEDED,
        message="waiting for quota: exceeded quota: q",
    )


async def readyz(plane: ControlPlane) -> tuple[int, str]:
    """``GET /readyz`` of ``plane``: status code and report."""
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{plane.http_port}/readyz") as reply,
    ):
        return reply.status, await reply.text()


def restarts(plane: ControlPlane, task: str) -> float:
    """How often the supervision restarted ``task`` (hodei_background_restarts_total)."""
    assert plane.metrics.registry is not None
    value = plane.metrics.registry.get_sample_value(
        "hodei_background_restarts_total", {"task": task}
    )
    return value or 0.0


class NetworkLocalProvider(LocalProvider):
    """Local workers whose agents dial ``HODEI_SERVER_ADDRESS`` over gRPC rather than the
    control plane's socket: for tests that watch what agents send over the network."""

    async def create_worker(self, request: WorkerRequest) -> WorkerStatus:
        return await super().create_worker(replace(request, server_socket=None))
