"""One worker agent's stream (WorkerService.Connect), as a protocol state machine.

The session authenticates the first message (Register), hands out the job, and then
handles the agent's messages: JobStarted moves the job to RUNNING, each LogBatch is
stored durably and published before it is acknowledged, and the JobResult is recorded
only when every log chunk up to its ``last_sequence`` is stored. A worker may only speak
for its own job. The stream is held to the protocol: Register must come within
``register_deadline`` seconds (an idle stream is closed), log chunks are numbered from 1
without gaps (a chunk may repeat an earlier one, as a resend does, or continue right after
the highest; anything else is INVALID_ARGUMENT), and once the worker sent its result, or
its job ended, no new output or message is accepted (FAILED_PRECONDITION). Agents number
log chunks from 1 in every attempt; :class:`~hodei.domain.logs.AttemptLog` maps them onto
the job's log so a retried job keeps one gap-free log.

Reading and storing are pipelined: a reader task takes messages off the stream while a
writer task stores log batches in order, merging the batches that arrived during the
previous transaction into one (group commit). That keeps the SQLite thread and the
network busy at the same time, which is what lets one job's log run at disk speed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Mapping
from dataclasses import dataclass

from hodei.api.messages import (
    AssignJob,
    CancelJob,
    Heartbeat,
    JobResult,
    JobStarted,
    LogAck,
    LogBatch,
    Register,
    Registered,
    ResultAck,
    ServerMessage,
    WorkerMessage,
)
from hodei.domain.ids import JobId
from hodei.domain.logs import AttemptLog, LogChunk, LogSequenceError
from hodei.domain.states import JobState
from hodei.domain.workers import WorkerRecord
from hodei.providers.base import Provider
from hodei.server.auth import OriginCheck, check_origin
from hodei.server.controller import JobController
from hodei.server.jobs import JobBook
from hodei.server.loghub import LogHub
from hodei.server.workers import AuthError, WorkerBook
from hodei.store.base import LogStore

_MAX_COALESCED = 64  # chunks per transaction (~4 MiB of 64 KiB chunks)


@dataclass(frozen=True)
class _Logs:
    chunks: list[LogChunk]  # sequences already shifted into the job's numbering
    ack: int  # the highest sequence in the agent's numbering


class SessionError(Exception):
    """Ends the stream with a gRPC status named by ``code`` (e.g. ``UNAUTHENTICATED``)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _missing_chunks(last: int, arrived: int) -> SessionError:
    return SessionError(
        "FAILED_PRECONDITION",
        f"result names log sequence {last} but only {arrived} chunks arrived; "
        "re-send the unacknowledged log batches",
    )


class WorkerSession:
    """Serves one connection; messages for the agent go to ``outbox`` (None ends it)."""

    def __init__(
        self,
        *,
        jobs: JobBook,
        workers: WorkerBook,
        controller: JobController,
        logs: LogStore,
        hub: LogHub,
        register_deadline: float,
        providers: Mapping[str, Provider],
        origin_wait: float,
    ) -> None:
        """``origin_wait``: seconds a registration waits for the provider to report where
        the worker may connect from (see :func:`hodei.server.auth.check_origin`)."""
        self._providers = providers
        self._origin_wait = origin_wait
        self._jobs = jobs
        self._workers = workers
        self._controller = controller
        self._log_store = logs
        self._hub = hub
        self.outbox: asyncio.Queue[ServerMessage | None] = asyncio.Queue()
        # Writes waiting for the writer task, in stream order (None: the stream ended).
        self._pending: deque[_Logs | JobResult | None] = deque()
        self._ready = asyncio.Event()
        self._register_deadline = register_deadline
        self._numbering = AttemptLog(0)  # set at registration, from the worker record
        self._result_received = False

    def _send(self, message: ServerMessage) -> None:
        self.outbox.put_nowait(message)

    async def stream(
        self, messages: AsyncIterator[WorkerMessage], *, peer: str = ""
    ) -> AsyncIterator[ServerMessage]:
        """The session as a transport sees it: :meth:`run` over ``messages`` while this
        yields what is for the agent; raises :class:`SessionError` (or the store's error)
        once nothing is left to send if the session failed. Each transport (the gRPC
        stream, the local socket) only encodes what this yields and how it ends."""
        failure: list[SessionError] = []

        async def consume() -> None:
            try:
                await self.run(messages, peer=peer)
            except SessionError as exc:
                failure.append(exc)
            finally:
                self.outbox.put_nowait(None)

        reader = asyncio.create_task(consume())
        try:
            while (message := await self.outbox.get()) is not None:
                yield message
            await _settle(reader)
            if failure:
                raise failure[0]
        finally:
            reader.cancel()

    async def run(self, messages: AsyncIterator[WorkerMessage], *, peer: str = "") -> None:
        """Handle the stream until the agent hangs up; raises :class:`SessionError`.

        ``peer``: where the connection comes from, as gRPC names it (``ipv4:IP:PORT``).
        """
        try:
            async with asyncio.timeout(self._register_deadline):
                first = await anext(messages, None)
        except TimeoutError:
            raise SessionError(
                "DEADLINE_EXCEEDED",
                f"no Register within {self._register_deadline:g}s; the stream is closed",
            ) from None
        if not isinstance(first, Register):
            raise SessionError("INVALID_ARGUMENT", "the first message must be Register")
        record = await self._register(first, peer)
        reader = asyncio.create_task(self._read(record, messages))
        writer = asyncio.create_task(self._write(record))
        try:
            done, _ = await asyncio.wait({reader, writer}, return_when=asyncio.FIRST_COMPLETED)
            if writer in done:
                writer.result()  # the writer only stops early on an error: raise it
            reader.result()
            self._queue(None)  # the agent hung up: store what it sent, then end
            await writer
        finally:
            for task in (reader, writer):
                task.cancel()
            await asyncio.gather(reader, writer, return_exceptions=True)
            self._workers.disconnect(record.id, self.outbox)

    async def _read(self, record: WorkerRecord, messages: AsyncIterator[WorkerMessage]) -> None:
        async for message in messages:
            await self._handle(record, message)

    def _queue(self, item: _Logs | JobResult | None) -> None:
        self._pending.append(item)
        self._ready.set()

    async def _write(self, record: WorkerRecord) -> None:
        """Store log batches in order, coalescing those that queued up while the previous
        transaction ran (group commit), and record the result after every earlier batch."""
        while True:
            await self._ready.wait()
            item = self._pending.popleft()
            if isinstance(item, _Logs):
                chunks, ack = list(item.chunks), item.ack
                while self._pending and isinstance(self._pending[0], _Logs):
                    if len(chunks) >= _MAX_COALESCED:
                        break
                    more = self._pending.popleft()
                    assert isinstance(more, _Logs)
                    chunks.extend(more.chunks)
                    ack = max(ack, more.ack)
            if not self._pending:
                self._ready.clear()
            if item is None:
                return
            if isinstance(item, JobResult):
                await self._result(record, item)
                continue
            await self._log_store.append_logs(chunks)
            self._hub.publish(record.job_id)
            self._send(LogAck(record.job_id, ack))

    async def _register(self, register: Register, peer: str) -> WorkerRecord:
        """Token first (nothing consumed), then where the connection comes from, then the
        token is consumed and the stream becomes the worker's only one."""
        try:
            candidate = await self._workers.check(register)
        except AuthError as exc:
            raise SessionError(exc.code, str(exc)) from None
        record = candidate.record
        try:
            # Where the connection comes from first: a refused caller that waits for the
            # watch holds no claim on the worker meanwhile.
            await self._check_origin(record, peer)
            self._workers.reserve(record.id)
        except AuthError as exc:
            raise SessionError(exc.code, str(exc)) from None
        try:
            admission = await self._workers.admit(candidate)
            job = await self._jobs.get(record.job_id)
            if job is None or job.worker_id != record.id:
                raise AuthError(
                    f"worker {record.id} no longer serves job {record.job_id}", permission=True
                )
        except AuthError as exc:
            self._workers.release(record.id)
            raise SessionError(exc.code, str(exc)) from None
        except BaseException:
            self._workers.release(record.id)
            raise
        stored = await self._log_store.last_log_sequence(record.job_id)
        self._numbering = AttemptLog.resumed(record.log_offset, stored)
        self._workers.connect(record.id, self.outbox)
        if admission.first:
            await self._controller.registered(record)
        self._send(Registered(admission.resume_token))
        if job.state is JobState.STARTING:
            self._send(AssignJob(job.id, job.spec))
        elif (
            job.state.terminal and job.state is not JobState.SUCCEEDED
        ) or job.cancel_requested_at is not None:
            self._send(CancelJob(job.id))
        return record

    async def _check_origin(self, record: WorkerRecord, peer: str) -> None:
        provider = self._providers.get(record.provider)
        if provider is None:
            raise AuthError(
                f"worker {record.id}'s provider {record.provider!r} is not enabled",
                permission=True,
            )
        origin = await provider.origin(record.id, wait=self._origin_wait)
        verdict = check_origin(origin, peer)
        if verdict is OriginCheck.NOT_RUNNING:
            # Its agent may simply be faster than the watch: worth a retry, unlike the rest.
            raise AuthError(
                f"worker {record.id} may not register yet: {verdict.value}", code="UNAVAILABLE"
            )
        if verdict is not OriginCheck.OK:
            raise AuthError(f"worker {record.id} refused: {verdict.value}", permission=True)

    def _check_job(self, record: WorkerRecord, job_id: JobId) -> None:
        if job_id != record.job_id:
            raise SessionError(
                "PERMISSION_DENIED", f"worker {record.id} may only report for job {record.job_id}"
            )

    async def _handle(self, record: WorkerRecord, message: WorkerMessage) -> None:
        if self._result_received and not isinstance(message, Heartbeat):
            raise SessionError(
                "FAILED_PRECONDITION",
                f"worker {record.id} already sent its result; nothing more is accepted",
            )
        match message:
            case JobStarted():
                self._check_job(record, message.job_id)
                await self._controller.started(record.job_id, record.id)
            case LogBatch():
                await self._logs(record, message)
            case JobResult():
                self._check_job(record, message.job_id)
                if message.last_sequence > self._numbering.highest:
                    # Checked here, before any store query: a sequence beyond what was
                    # sent can be anything up to 2**64-1.
                    raise _missing_chunks(message.last_sequence, self._numbering.highest)
                self._result_received = True
                self._queue(message)
            case Heartbeat():
                pass
            case Register():
                raise SessionError("INVALID_ARGUMENT", "Register may only be sent first")

    async def _logs(self, record: WorkerRecord, batch: LogBatch) -> None:
        if not batch.chunks:
            return
        for chunk in batch.chunks:
            self._check_job(record, chunk.job_id)
        numbering = self._numbering
        try:
            highest = numbering.accept(c.sequence for c in batch.chunks)
        except LogSequenceError as exc:
            raise SessionError("INVALID_ARGUMENT", str(exc)) from None
        if highest > numbering.highest and not await self._job_open(record):
            raise SessionError(
                "FAILED_PRECONDITION",
                f"job {record.job_id} has ended; its log takes no more output",
            )
        if highest == numbering.highest and not await self._job_open(record):
            # A resend of chunks already stored, after the job ended: they are durable.
            self._send(LogAck(record.job_id, max(c.sequence for c in batch.chunks)))
            return
        numbering.advance(highest)
        self._queue(_Logs(numbering.in_job(batch.chunks), max(c.sequence for c in batch.chunks)))

    async def _job_open(self, record: WorkerRecord) -> bool:
        job = await self._jobs.get(record.job_id)
        return job is not None and not job.state.terminal

    async def _result(self, record: WorkerRecord, result: JobResult) -> None:
        last = result.last_sequence
        after, up_to = self._numbering.job_range(last)
        stored = await self._log_store.count_logs(record.job_id, up_to=up_to)
        stored -= await self._log_store.count_logs(record.job_id, up_to=after)
        if stored < last:
            raise _missing_chunks(last, stored)
        await self._controller.finish_with_result(record.id, result)
        self._send(ResultAck(result.job_id))


async def _settle(task: Awaitable[None]) -> None:
    """Wait briefly for the reader to finish (a replaced connection may still be reading)."""
    with contextlib.suppress(TimeoutError, asyncio.CancelledError):
        await asyncio.wait_for(asyncio.shield(task), 0.05)
