"""The gRPC face of the control plane: JobService, WorkerService and grpc.health.v1.

Thin adapters: they convert protobuf to domain values (via :mod:`hodei.api`), call the
job book, controller and sessions, and map errors to status codes; every decision
(which provider, when to dispatch, what to count) is the controller's. ``create_server``
builds and binds a server without starting it, so tests and the app choose when to
serve and always stop it with a grace period.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from hodei.api import convert
from hodei.api.messages import (
    ProtocolError,
    WorkerMessage,
    decode_worker_message,
    encode_server_message,
)
from hodei.api.v1 import jobs_pb2, jobs_pb2_grpc, types_pb2, worker_pb2, worker_pb2_grpc
from hodei.api.wire import Unparsable
from hodei.domain.ids import JobId
from hodei.domain.jobs import Job, SpecError
from hodei.domain.names import NameRuleError, check_label_key, check_label_value
from hodei.domain.stdio import JobInput
from hodei.server.controller import JobController, NotAccepting, UnknownProvider
from hodei.server.events import JobEvents
from hodei.server.grpc_guard import add_guarded
from hodei.server.jobs import JobBook
from hodei.server.loghub import LogHub, read_logs
from hodei.server.stdin import InputRefused, InputRelay
from hodei.server.worker_session import SessionError, WorkerSession
from hodei.server.workers import WorkerBook
from hodei.store.base import LogStore

MAX_MESSAGE_BYTES = 32 * 1024 * 1024
SERVICE_NAMES = ("hodei.v1.JobService", "hodei.v1.WorkerService")


def create_server(
    address: str,
    *,
    interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
    credentials: grpc.ServerCredentials | None = None,
) -> tuple[grpc.aio.Server, int]:
    """A gRPC server bound to ``address`` (port 0 picks one), not started yet; TLS when
    ``credentials`` are given (see :mod:`hodei.server.tls`)."""
    server = grpc.aio.server(
        interceptors=list(interceptors),
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ],
    )
    if credentials is None:
        port = server.add_insecure_port(address)
    else:
        port = server.add_secure_port(address, credentials)
    return server, port


def add_services(
    server: grpc.aio.Server, jobs: JobServicer, workers: WorkerServicer
) -> health.aio.HealthServicer:
    """Register JobService, WorkerService (both guarded, see :mod:`grpc_guard`) and
    grpc.health.v1; returns the health servicer."""
    add_guarded(server, jobs_pb2_grpc.add_JobServiceServicer_to_server, jobs)
    add_guarded(server, worker_pb2_grpc.add_WorkerServiceServicer_to_server, workers)
    servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    return servicer


async def set_serving(servicer: health.aio.HealthServicer, serving: bool) -> None:
    status = (
        health_pb2.HealthCheckResponse.SERVING
        if serving
        else health_pb2.HealthCheckResponse.NOT_SERVING
    )
    for name in ("", *SERVICE_NAMES):
        await servicer.set(name, status)


class JobServicer(jobs_pb2_grpc.JobServiceServicer):
    """The client API."""

    def __init__(
        self,
        *,
        jobs: JobBook,
        workers: WorkerBook,
        controller: JobController,
        logs: LogStore,
        hub: LogHub,
        events: JobEvents,
        inputs: InputRelay,
    ) -> None:
        self._jobs = jobs
        self._workers = workers
        self._controller = controller
        self._logs = logs
        self._hub = hub
        self._events = events
        self._input = inputs

    def _pb(self, job: Job) -> types_pb2.Job:
        return convert.job_to_pb(job)

    async def _job(self, job_id: str, context: grpc.aio.ServicerContext) -> Job:
        job = await self._jobs.get(JobId(job_id)) if job_id else None
        if job is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"job {job_id!r} not found")
        assert job is not None
        return job

    async def SubmitJob(
        self, request: jobs_pb2.SubmitJobRequest, context: grpc.aio.ServicerContext
    ) -> types_pb2.Job:
        try:
            job = await self._controller.submit(convert.spec_from_pb(request.spec).validated())
        except NotAccepting as exc:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
        except (SpecError, UnknownProvider) as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        return self._pb(job)

    async def GetJob(
        self, request: jobs_pb2.GetJobRequest, context: grpc.aio.ServicerContext
    ) -> types_pb2.Job:
        return self._pb(await self._job(request.id, context))

    async def ListJobs(
        self, request: jobs_pb2.ListJobsRequest, context: grpc.aio.ServicerContext
    ) -> jobs_pb2.ListJobsResponse:
        try:
            states = [convert.state_from_pb(s) for s in request.states]
        except ValueError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"states: {exc}")
        limit = min(request.limit or convert.DEFAULT_LIST_LIMIT, convert.MAX_LIST_LIMIT)
        after = JobId(request.page_token) if request.page_token else None
        try:  # the selector is matched inside the store: only real label keys and values
            labels = {
                check_label_key(key): check_label_value(value)
                for key, value in request.labels.items()
            }
        except NameRuleError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"labels: {exc}")
        jobs = await self._jobs.list(
            states=states, labels=labels or None, limit=limit + 1, after=after
        )
        return convert.jobs_page(jobs, limit=limit)

    async def CancelJob(
        self, request: jobs_pb2.CancelJobRequest, context: grpc.aio.ServicerContext
    ) -> types_pb2.Job:
        job = await self._controller.cancel(JobId(request.id)) if request.id else None
        if job is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"job {request.id!r} not found")
        assert job is not None
        return self._pb(job)

    async def StreamLogs(
        self, request: jobs_pb2.StreamLogsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[types_pb2.LogChunk]:
        job = await self._job(request.job_id, context)

        async def ended() -> bool:
            current = await self._jobs.get(job.id)
            return current is None or current.state.terminal

        async for chunk in read_logs(
            self._logs,
            self._hub,
            job.id,
            from_sequence=request.from_sequence,
            follow=request.follow,
            job_ended=ended,
        ):
            yield convert.chunk_to_pb(chunk)

    async def WatchJob(
        self, request: jobs_pb2.WatchJobRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[types_pb2.Job]:
        job = await self._job(request.id, context)
        async with self._events.subscribe(job.id) as changes:
            last = await self._jobs.get(job.id)
            assert last is not None
            yield convert.job_to_pb(last)
            while not last.state.terminal:
                changed = await changes.get()
                if changed == last:
                    continue
                last = changed
                yield convert.job_to_pb(changed)

    async def SendInput(
        self,
        request_iterator: AsyncIterator[types_pb2.JobInput | Unparsable],
        context: grpc.aio.ServicerContext,
    ) -> jobs_pb2.SendInputResponse:
        async def items() -> AsyncIterator[JobInput]:
            async for request in request_iterator:
                if isinstance(request, Unparsable):
                    raise InputRefused("INVALID_ARGUMENT", request.problem)
                try:
                    yield convert.input_from_pb(request)
                except ValueError as exc:
                    raise InputRefused("INVALID_ARGUMENT", str(exc)) from None

        try:
            await self._input.relay(items())
        except InputRefused as exc:
            await context.abort(grpc.StatusCode[exc.code], str(exc))
        return jobs_pb2.SendInputResponse()

    async def ListWorkers(
        self, request: jobs_pb2.ListWorkersRequest, context: grpc.aio.ServicerContext
    ) -> jobs_pb2.ListWorkersResponse:
        records = sorted(self._workers.active(), key=lambda r: r.created_at)
        return jobs_pb2.ListWorkersResponse(workers=[convert.worker_to_pb(r) for r in records])


SessionFactory = Callable[[], WorkerSession]


async def _decoded(
    requests: AsyncIterator[worker_pb2.WorkerMessage | Unparsable],
) -> AsyncIterator[WorkerMessage]:
    async for request in requests:
        if isinstance(request, Unparsable):
            raise SessionError("INVALID_ARGUMENT", request.problem)
        try:
            yield decode_worker_message(request)
        except ProtocolError as exc:
            raise SessionError("INVALID_ARGUMENT", str(exc)) from None


class WorkerServicer(worker_pb2_grpc.WorkerServiceServicer):
    """The agents' bidirectional stream; each connection is one :class:`WorkerSession`."""

    def __init__(self, new_session: SessionFactory) -> None:
        self._new_session = new_session

    async def Connect(
        self,
        request_iterator: AsyncIterator[worker_pb2.WorkerMessage | Unparsable],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[worker_pb2.ServerMessage]:
        session = self._new_session()
        try:
            async for message in session.stream(_decoded(request_iterator), peer=context.peer()):
                yield encode_server_message(message)
        except SessionError as exc:
            await context.abort(grpc.StatusCode[exc.code], str(exc))
