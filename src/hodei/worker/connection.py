"""One gRPC stream to the control plane, speaking in :mod:`hodei.worker.messages` values.

This is the agent's only module that knows about gRPC and the generated protocol code;
the rest of the agent sends and receives plain values. A broken stream surfaces as
:class:`ConnectionLost` (worth reconnecting) or :class:`Rejected` (the control plane
refused this worker: reconnecting cannot help).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import grpc
import grpc.aio

from hodei.api.v1 import types_pb2, worker_pb2, worker_pb2_grpc
from hodei.worker import messages as m

_STREAM_TO_PB = {"stdout": types_pb2.STDOUT, "stderr": types_pb2.STDERR}
_REJECTING = {
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.FAILED_PRECONDITION,
}
_CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
    # Reconnects are the agent's own business (with its backoff), not the channel's.
    ("grpc.enable_retries", 0),
]


CLOSE_TIMEOUT = 1.0


class ConnectionLost(Exception):
    """The stream broke or could not be opened; try again later."""


class Rejected(Exception):
    """The control plane refused this worker (bad or used token, unknown worker)."""


def _to_pb(message: m.Outgoing) -> worker_pb2.WorkerMessage:
    if isinstance(message, m.LogBatch):
        chunks = [
            types_pb2.LogChunk(
                job_id=message.job_id,
                sequence=chunk.sequence,
                stream=_STREAM_TO_PB[chunk.stream],
                data=chunk.data,
            )
            for chunk in message.chunks
        ]
        return worker_pb2.WorkerMessage(logs=worker_pb2.LogBatch(chunks=chunks))
    if isinstance(message, m.Register):
        return worker_pb2.WorkerMessage(
            register=worker_pb2.Register(
                worker_id=message.worker_id,
                token=message.token,
                resume_token=message.resume_token,
            )
        )
    if isinstance(message, m.JobStarted):
        return worker_pb2.WorkerMessage(
            started=worker_pb2.JobStarted(job_id=message.job_id, pid=message.pid)
        )
    if isinstance(message, m.JobResult):
        return worker_pb2.WorkerMessage(
            result=worker_pb2.JobResult(
                job_id=message.job_id,
                exit_code=message.exit_code,
                timed_out=message.timed_out,
                cancelled=message.cancelled,
                error=message.error,
                last_sequence=message.last_sequence,
            )
        )
    return worker_pb2.WorkerMessage(heartbeat=worker_pb2.Heartbeat())


def _assignment(assign: Any) -> m.Assignment:
    spec = assign.spec
    argv = ("/bin/sh", "-c", spec.shell) if spec.HasField("shell") else tuple(spec.command)
    timeout = spec.timeout_seconds if spec.timeout_seconds > 0 else None
    return m.Assignment(
        job_id=assign.job_id, argv=argv, env=dict(spec.env), timeout_seconds=timeout
    )


def _from_pb(message: worker_pb2.ServerMessage) -> m.Incoming | None:
    kind = message.WhichOneof("body")
    if kind == "registered":
        return m.Registered(resume_token=message.registered.resume_token)
    if kind == "assign":
        return _assignment(message.assign)
    if kind == "cancel":
        return m.CancelJob(job_id=message.cancel.job_id)
    if kind == "log_ack":
        return m.LogAck(job_id=message.log_ack.job_id, sequence=message.log_ack.sequence)
    if kind == "result_ack":
        return m.ResultAck(job_id=message.result_ack.job_id)
    return None  # a message type newer than this agent: ignore it


def _failure(exc: grpc.aio.AioRpcError) -> Exception:
    text = f"{exc.code().name}: {exc.details()}"
    return Rejected(text) if exc.code() in _REJECTING else ConnectionLost(text)


class Connection:
    """An open ``WorkerService.Connect`` stream. Writes are serialised; reads are not shared."""

    def __init__(self, channel: grpc.aio.Channel, call: Any) -> None:
        self._channel = channel
        self._call = call
        self._write_lock = asyncio.Lock()
        self._closed = False

    @classmethod
    async def open(cls, address: str) -> Connection:
        """Open a stream to ``address`` (``host:port``)."""
        channel = grpc.aio.insecure_channel(address, options=_CHANNEL_OPTIONS)
        stub = worker_pb2_grpc.WorkerServiceStub(channel)  # type: ignore[no-untyped-call]
        return cls(channel, stub.Connect())

    async def send(self, message: m.Outgoing) -> None:
        """Write one message; raise :class:`ConnectionLost` or :class:`Rejected` on failure."""
        pb = _to_pb(message)
        async with self._write_lock:
            try:
                await self._call.write(pb)
            except grpc.aio.AioRpcError as exc:
                raise _failure(exc) from None
            except (asyncio.InvalidStateError, grpc.aio.UsageError) as exc:
                raise ConnectionLost(f"stream closed: {exc}") from None

    async def receive(self) -> m.Incoming | None:
        """The next message; ``None`` for one this agent does not know.

        Raises :class:`ConnectionLost` when the stream ends, :class:`Rejected` when the
        control plane ended it with an authentication or authorisation error.
        """
        try:
            message = await self._call.read()
        except grpc.aio.AioRpcError as exc:
            raise _failure(exc) from None
        if message is grpc.aio.EOF:
            await self._raise_status()
        return _from_pb(message)

    async def _raise_status(self) -> None:
        code = await self._call.code()
        details = await self._call.details()
        if code in _REJECTING:
            raise Rejected(f"{code.name}: {details}")
        raise ConnectionLost(f"stream ended: {code.name}: {details}")

    async def close(self) -> None:
        """Cancel the stream and close the channel, waiting at most CLOSE_TIMEOUT seconds.

        grpc.aio's channel close can hang after a cancelled stream; the agent must not.
        """
        if self._closed:
            return
        self._closed = True
        self._call.cancel()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._channel.close(grace=None), CLOSE_TIMEOUT)
