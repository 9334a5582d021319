"""The agent's stream speaks the shared protocol values and skips messages it does not know."""

from __future__ import annotations

from typing import Any

from hodei.api.messages import AssignJob, JobResult, LogBatch, encode_server_message
from hodei.api.v1 import types_pb2, worker_pb2
from hodei.domain.ids import JobId
from hodei.domain.jobs import JobSpec
from hodei.domain.logs import LogChunk, LogStream
from hodei.worker.connection import Connection


class _Call:
    """The two halves of a stream call the connection uses: queued reads, recorded writes."""

    def __init__(self, *reads: worker_pb2.ServerMessage) -> None:
        self.reads = list(reads)
        self.written: list[worker_pb2.WorkerMessage] = []

    async def read(self) -> worker_pb2.ServerMessage:
        return self.reads.pop(0)

    async def write(self, message: worker_pb2.WorkerMessage) -> None:
        self.written.append(message)


def _connection(call: _Call) -> Connection:
    channel: Any = None  # never touched: the tests do not close the connection
    return Connection(channel, call)


async def test_an_assignment_arrives_with_the_spec_it_was_sent_with() -> None:
    spec = JobSpec(shell="echo hi", env={"A": "1"}, timeout_seconds=3.0)
    sent = AssignJob(JobId("j-1"), spec)
    connection = _connection(_Call(encode_server_message(sent)))
    received = await connection.receive()
    assert received == sent
    assert isinstance(received, AssignJob) and received.spec.argv() == ("/bin/sh", "-c", "echo hi")


async def test_an_unknown_message_is_skipped_not_fatal() -> None:
    connection = _connection(_Call(worker_pb2.ServerMessage()))
    assert await connection.receive() is None


async def test_log_batches_and_results_go_out_in_protocol_form() -> None:
    call = _Call()
    connection = _connection(call)
    chunk = LogChunk(JobId("j-1"), 1, LogStream.STDERR, b"\xff")
    await connection.send(LogBatch((chunk,)))
    await connection.send(JobResult(JobId("j-1"), exit_code=3, last_sequence=1))
    logs, result = call.written
    (wire_chunk,) = logs.logs.chunks
    assert (wire_chunk.job_id, wire_chunk.sequence, wire_chunk.data) == ("j-1", 1, b"\xff")
    assert wire_chunk.stream == types_pb2.STDERR
    assert (result.result.exit_code, result.result.last_sequence) == (3, 1)
