"""The CLI's gRPC client for ``JobService``, speaking in domain values.

The only CLI module that touches gRPC and the generated code. Failures become
:class:`ClientError` with a message that names ``HODEI_SERVER`` / ``HODEI_API_TOKEN``
where those are what the user should check.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import grpc
import grpc.aio

from hodei.api.convert import (
    DEFAULT_LIST_LIMIT,
    MAX_LIST_LIMIT,
    chunk_from_pb,
    input_to_pb,
    job_from_pb,
    spec_to_pb,
    state_to_pb,
    worker_from_pb,
)
from hodei.api.tls import TlsFileError, explain, open_channel, speaks_tls
from hodei.api.v1 import jobs_pb2, jobs_pb2_grpc, types_pb2
from hodei.config.settings import ClientTls
from hodei.domain.jobs import Job, JobSpec
from hodei.domain.logs import LogChunk
from hodei.domain.states import JobState
from hodei.domain.stdio import JobInput
from hodei.domain.workers import WorkerRecord

__all__ = ["ClientError", "HodeiClient"]

_CALL_TIMEOUT = 30.0
_CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    # Find a restarted control plane within a second or two, not gRPC's default minutes.
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
]


class ClientError(Exception):
    """A call failed; ``code`` is the gRPC status name (``UNAVAILABLE``, ``NOT_FOUND``...)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code

    @property
    def unreachable(self) -> bool:
        return self.code in ("UNAVAILABLE", "DEADLINE_EXCEEDED")


class HodeiClient:
    """Async client of one control plane; use as ``async with HodeiClient(...)``."""

    def __init__(
        self,
        address: str,
        *,
        api_token: str | None = None,
        env_name: str = "",
        tls: ClientTls | None = None,
    ) -> None:
        """Raises :class:`ClientError` (``INVALID_ARGUMENT``) for an unreadable TLS file."""
        self.address = address
        self._where = f"{address} ({env_name})" if env_name else address
        self._metadata = (("authorization", f"Bearer {api_token}"),) if api_token else ()
        self._tls = tls
        try:
            self._channel = open_channel(address, tls, _CHANNEL_OPTIONS)
        except TlsFileError as exc:
            raise ClientError("INVALID_ARGUMENT", str(exc)) from None
        self._stub: Any = jobs_pb2_grpc.JobServiceStub(self._channel)  # type: ignore[no-untyped-call]

    async def __aenter__(self) -> HodeiClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._channel.close(grace=None)

    async def _error(self, exc: grpc.aio.AioRpcError) -> ClientError:
        code = exc.code()
        details = exc.details() or code.name
        if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
            # A plaintext client that cannot connect asks whether the server speaks TLS,
            # so the message can say what to set instead of "Socket closed".
            probe = self._tls is None and await speaks_tls(self.address)
            why = explain(details, self._tls, server_speaks_tls=probe)
            text = f"cannot reach the control plane at {self._where}: {why or details}"
        elif code == grpc.StatusCode.UNAUTHENTICATED:
            text = (
                f"the control plane at {self._where} refused the call: {details} (HODEI_API_TOKEN)"
            )
        else:
            text = details
        return ClientError(code.name, text)

    async def _unary(self, method: str, request: Any) -> Any:
        try:
            return await getattr(self._stub, method)(
                request, metadata=self._metadata, timeout=_CALL_TIMEOUT
            )
        except grpc.aio.AioRpcError as exc:
            raise await self._error(exc) from None

    async def submit(self, spec: JobSpec) -> Job:
        request = jobs_pb2.SubmitJobRequest(spec=spec_to_pb(spec))
        return job_from_pb(await self._unary("SubmitJob", request))

    async def get(self, job_id: str) -> Job:
        return job_from_pb(await self._unary("GetJob", jobs_pb2.GetJobRequest(id=job_id)))

    async def cancel(self, job_id: str) -> Job:
        return job_from_pb(await self._unary("CancelJob", jobs_pb2.CancelJobRequest(id=job_id)))

    async def list_jobs(
        self,
        states: Sequence[JobState] = (),
        limit: int = 0,
        labels: Mapping[str, str] | None = None,
    ) -> list[Job]:
        """Newest first, at most ``limit`` jobs (0: the default page size) carrying every
        one of ``labels``, following the server's pages (each bounded in bytes) until
        there are enough."""
        want = limit or DEFAULT_LIST_LIMIT
        jobs: list[Job] = []
        token = ""
        while True:
            request = jobs_pb2.ListJobsRequest(
                states=[state_to_pb(s) for s in states],
                limit=min(want - len(jobs), MAX_LIST_LIMIT),
                page_token=token,
                labels=dict(labels or {}),
            )
            response = await self._unary("ListJobs", request)
            jobs.extend(job_from_pb(job) for job in response.jobs)
            token = response.next_page_token
            if not token or len(jobs) >= want:
                return jobs

    async def list_workers(self) -> list[WorkerRecord]:
        response = await self._unary("ListWorkers", jobs_pb2.ListWorkersRequest())
        return [worker_from_pb(worker) for worker in response.workers]

    async def logs(
        self, job_id: str, *, follow: bool = False, from_sequence: int = 0
    ) -> AsyncIterator[LogChunk]:
        """The job's output chunks from ``from_sequence``; with ``follow``, until it ends."""
        request = jobs_pb2.StreamLogsRequest(
            job_id=job_id, follow=follow, from_sequence=from_sequence
        )
        call = self._stub.StreamLogs(request, metadata=self._metadata)
        try:
            async for message in call:
                yield chunk_from_pb(message)
        except grpc.aio.AioRpcError as exc:
            raise await self._error(exc) from None
        finally:
            call.cancel()

    async def send_input(self, items: AsyncIterator[JobInput]) -> None:
        """Stream stdin bytes and terminal resizes to a job (``SendInput``) until ``items``
        ends; raises :class:`ClientError` when the server refuses or is unreachable."""

        async def requests() -> AsyncIterator[types_pb2.JobInput]:
            async for item in items:
                yield input_to_pb(item)

        try:
            await self._stub.SendInput(requests(), metadata=self._metadata)
        except grpc.aio.AioRpcError as exc:
            raise await self._error(exc) from None

    async def watch(self, job_id: str) -> AsyncIterator[Job]:
        """The job now, then each change (state, waiting reason), until it ends."""
        call = self._stub.WatchJob(jobs_pb2.WatchJobRequest(id=job_id), metadata=self._metadata)
        try:
            async for message in call:
                yield job_from_pb(message)
        except grpc.aio.AioRpcError as exc:
            raise await self._error(exc) from None
        finally:
            call.cancel()
