"""One gRPC stream to the control plane, speaking in :mod:`hodei.api.messages` values.

This is the agent's only module that knows about gRPC (and the generated stub); the rest
of the agent sends and receives the protocol's plain values, converted by the encoders
and decoders the control plane uses too. A broken stream surfaces as
:class:`~hodei.worker.stream_errors.ConnectionLost` (worth reconnecting) or
:class:`~hodei.worker.stream_errors.Rejected` (the control plane refused this worker:
reconnecting cannot help). Agents on the control plane's host use
:mod:`hodei.worker.socket_connection` instead.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import grpc
import grpc.aio

from hodei.api.messages import (
    ProtocolError,
    ServerMessage,
    WorkerMessage,
    decode_server_message,
    encode_worker_message,
)
from hodei.api.tls import TlsFileError, open_channel
from hodei.api.v1 import worker_pb2_grpc
from hodei.config.settings import ClientTls
from hodei.worker.stream_errors import ConnectionLost, Rejected, ended, failure

_CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
    # Reconnects are the agent's own business (with its backoff), not the channel's.
    ("grpc.enable_retries", 0),
]


CLOSE_TIMEOUT = 1.0


def _failure(exc: grpc.aio.AioRpcError) -> Exception:
    return failure(exc.code().name, exc.details() or "")


class Connection:
    """An open ``WorkerService.Connect`` stream. Writes are serialised; reads are not shared."""

    def __init__(self, channel: grpc.aio.Channel, call: Any) -> None:
        self._channel = channel
        self._call = call
        self._write_lock = asyncio.Lock()
        self._closed = False

    @classmethod
    async def open(cls, address: str, *, tls: ClientTls | None = None) -> Connection:
        """Open a stream to ``address`` (``host:port``), over TLS unless ``tls`` is None.

        Raises :class:`Rejected` when a certificate file named by a variable is unreadable
        (reconnecting cannot help).
        """
        try:
            channel = open_channel(address, tls, _CHANNEL_OPTIONS)
        except TlsFileError as exc:
            raise Rejected(str(exc)) from None
        stub = worker_pb2_grpc.WorkerServiceStub(channel)  # type: ignore[no-untyped-call]
        return cls(channel, stub.Connect())

    async def send(self, message: WorkerMessage) -> None:
        """Write one message; raise :class:`ConnectionLost` or :class:`Rejected` on failure."""
        pb = encode_worker_message(message)
        async with self._write_lock:
            try:
                await self._call.write(pb)
            except grpc.aio.AioRpcError as exc:
                raise _failure(exc) from None
            except (asyncio.InvalidStateError, grpc.aio.UsageError) as exc:
                raise ConnectionLost(f"stream closed: {exc}") from None

    async def receive(self) -> ServerMessage | None:
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
        try:
            return decode_server_message(message)
        except ProtocolError:
            return None  # a message type newer than this agent: ignore it

    async def _raise_status(self) -> None:
        code = await self._call.code()
        raise ended(code.name, await self._call.details() or "")

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
