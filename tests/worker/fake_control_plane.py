"""A scripted WorkerService for the agent's tests: assigns one job, records what it hears.

Small on purpose: it stores log chunks by sequence (so re-sent chunks are idempotent, as
on the real control plane), acks them, and can misbehave on cue: drop the stream after
some log batches or at the first result, reject the token, or cancel the job.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import grpc
import grpc.aio

from hodei.api.v1 import types_pb2, worker_pb2, worker_pb2_grpc

JOB_ID = "j-test000001"
WORKER_ID = "w-test000001"
TOKEN = "one-time-token"


@dataclass
class Script:
    spec: types_pb2.JobSpec
    reject: bool = False
    cancel_after_output: bool = False  # cancel once the first log batch has arrived
    drop_after_batches: int | None = None  # first connection only
    drop_first_result: bool = False
    ack_logs: bool = True


@dataclass
class Record:
    registers: list[worker_pb2.Register] = field(default_factory=list)
    started: list[worker_pb2.JobStarted] = field(default_factory=list)
    chunks: dict[int, types_pb2.LogChunk] = field(default_factory=dict)
    batches: int = 0
    late_batches: int = 0  # log batches that arrived after a result: would be lost
    results: list[worker_pb2.JobResult] = field(default_factory=list)
    acked_result: worker_pb2.JobResult | None = None
    first_message_after_register: list[str] = field(default_factory=list)
    started_event: asyncio.Event = field(default_factory=asyncio.Event)
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def output(self, stream: int) -> bytes:
        """The bytes of one stream, in sequence order (gaps would show as missing data)."""
        return b"".join(c.data for _, c in sorted(self.chunks.items()) if c.stream == stream)

    def sequences_complete(self) -> bool:
        return sorted(self.chunks) == list(range(1, len(self.chunks) + 1))


class FakeWorkerService(worker_pb2_grpc.WorkerServiceServicer):
    def __init__(self, script: Script, job_input: Sequence[types_pb2.JobInput] = ()) -> None:
        self.script = script
        self.input = tuple(job_input)  # sent right after the assignment
        self.record = Record()
        self._connections = 0
        self._dropped_result = False

    async def Connect(self, request_iterator: object, context: grpc.aio.ServicerContext) -> None:
        self._connections += 1
        first_connection = self._connections == 1
        message = await context.read()
        register = message.register
        self.record.registers.append(register)
        if self.script.reject or register.worker_id != WORKER_ID:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "token not valid")
        await context.write(
            worker_pb2.ServerMessage(registered=worker_pb2.Registered(resume_token="resume-1"))
        )
        if not self.record.started:
            assign = worker_pb2.AssignJob(job_id=JOB_ID, spec=self.script.spec)
            await context.write(worker_pb2.ServerMessage(assign=assign))
            for item in self.input:
                await context.write(worker_pb2.ServerMessage(input=item))
        batches_here = 0
        after_register = True
        while True:
            message = await context.read()
            if message is grpc.aio.EOF:
                return
            kind = message.WhichOneof("body")
            if after_register:
                self.record.first_message_after_register.append(kind)
                after_register = False
            if kind == "started":
                self.record.started.append(message.started)
                self.record.started_event.set()
            elif kind == "logs":
                self.record.batches += 1
                self.record.late_batches += bool(self.record.results)
                batches_here += 1
                for chunk in message.logs.chunks:
                    self.record.chunks.setdefault(chunk.sequence, chunk)
                if self.script.cancel_after_output and self.record.batches == 1:
                    cancel = worker_pb2.CancelJob(job_id=JOB_ID)
                    await context.write(worker_pb2.ServerMessage(cancel=cancel))
                drop = self.script.drop_after_batches
                if first_connection and drop is not None and batches_here >= drop:
                    return
                if self.script.ack_logs:
                    last = max(message.logs.chunks[-1].sequence, 0)
                    ack = worker_pb2.LogAck(job_id=JOB_ID, sequence=last)
                    await context.write(worker_pb2.ServerMessage(log_ack=ack))
            elif kind == "result":
                self.record.results.append(message.result)
                if self.script.drop_first_result and not self._dropped_result:
                    self._dropped_result = True
                    return
                self.record.acked_result = message.result
                await context.write(
                    worker_pb2.ServerMessage(result_ack=worker_pb2.ResultAck(job_id=JOB_ID))
                )
                self.record.done.set()


@asynccontextmanager
async def fake_control_plane(
    script: Script, job_input: Sequence[types_pb2.JobInput] = ()
) -> AsyncIterator[tuple[FakeWorkerService, str]]:
    """Serve the fake on 127.0.0.1:0 (sending ``job_input`` after the assignment);
    yields the servicer and its address."""
    server = grpc.aio.server()
    service = FakeWorkerService(script, job_input)
    worker_pb2_grpc.add_WorkerServiceServicer_to_server(service, server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield service, f"127.0.0.1:{port}"
    finally:
        await server.stop(None)
