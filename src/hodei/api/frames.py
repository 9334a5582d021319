"""The worker protocol over a byte stream, for agents on the control plane's own host.

Over gRPC each agent process pays for its own gRPC core: its threads, then a TCP and
HTTP/2 connection, ≈7 ms of CPU here for a job that may itself take 1 ms (and every page
the forked agent then writes costs more once those threads exist). The local provider's
agents run on the control plane's host, so they speak the same messages over the
control plane's Unix socket instead, one frame each, as containerd's per-container shims
do with ttrpc rather than gRPC::

    length   uint32, big-endian: the bytes that follow (kind and payload)
    kind     uint8
    payload  length - 1 bytes

``kind`` 1 (:data:`MESSAGE`): a protobuf ``WorkerMessage`` (agent → control plane) or
``ServerMessage`` (control plane → agent), exactly as on the ``WorkerService.Connect``
stream. ``kind`` 2 (:data:`STATUS`, control plane → agent, the last frame): how the
stream ended, as gRPC would say it: UTF-8 ``CODE`` or ``CODE details``, ``CODE`` the
name of a gRPC status code (``OK``, ``PERMISSION_DENIED``...). A frame longer than
:data:`MAX_FRAME` is refused, as gRPC refuses a message over its limit.
"""

from __future__ import annotations

import asyncio
import struct

from google.protobuf.message import DecodeError

from hodei.api.messages import (
    ProtocolError,
    ServerMessage,
    WorkerMessage,
    decode_server_message,
    decode_worker_message,
    encode_server_message,
    encode_worker_message,
)
from hodei.api.v1 import worker_pb2
from hodei.api.wire import Unparsable, lenient_parser

__all__ = [
    "MAX_FRAME",
    "MESSAGE",
    "STATUS",
    "FrameError",
    "parse_server_frame",
    "parse_status",
    "parse_worker_frame",
    "read_frame",
    "server_frame",
    "status_frame",
    "worker_frame",
]

MESSAGE = 1
STATUS = 2
MAX_FRAME = 64 * 1024 * 1024  # bytes; the agents' gRPC channels allow the same
_HEADER = struct.Struct(">IB")


class FrameError(ValueError):
    """Bytes that are not a frame: too long, empty, or cut off."""


def _frame(kind: int, payload: bytes) -> bytes:
    if len(payload) + 1 > MAX_FRAME:
        raise FrameError(f"a frame of {len(payload) + 1} bytes is over {MAX_FRAME}")
    return _HEADER.pack(len(payload) + 1, kind) + payload


def worker_frame(message: WorkerMessage) -> bytes:
    """One agent → control plane message as a frame."""
    return _frame(MESSAGE, encode_worker_message(message).SerializeToString())


def server_frame(message: ServerMessage) -> bytes:
    """One control plane → agent message as a frame."""
    return _frame(MESSAGE, encode_server_message(message).SerializeToString())


def status_frame(code: str, details: str = "") -> bytes:
    """The last frame of a stream: its gRPC status code name and details."""
    return _frame(STATUS, f"{code} {details}".strip().encode())


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes] | None:
    """The next frame as ``(kind, payload)``; None when the stream ends between frames.

    Raises :class:`FrameError` for a frame over :data:`MAX_FRAME` or one cut off by the
    end of the stream; OSError as the reader does.
    """
    try:
        header = await reader.readexactly(_HEADER.size)
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            return None
        raise FrameError("the stream ended inside a frame header") from None
    length, kind = _HEADER.unpack(header)
    if length < 1 or length > MAX_FRAME:
        raise FrameError(f"a frame of {length} bytes (accepted: 1 to {MAX_FRAME})")
    try:
        return kind, await reader.readexactly(length - 1)
    except asyncio.IncompleteReadError:
        raise FrameError("the stream ended inside a frame") from None


_parse_worker_message = lenient_parser(worker_pb2.WorkerMessage)


def parse_worker_frame(payload: bytes) -> WorkerMessage:
    """A :data:`MESSAGE` payload from an agent. Raises :class:`ProtocolError` naming
    the field protobuf refused, as the gRPC server does (:mod:`hodei.api.wire`)."""
    pb = _parse_worker_message(payload)
    if isinstance(pb, Unparsable):
        raise ProtocolError(pb.problem)
    return decode_worker_message(pb)


def parse_server_frame(payload: bytes) -> ServerMessage:
    """A :data:`MESSAGE` payload from the control plane. Raises :class:`ProtocolError`."""
    pb = worker_pb2.ServerMessage()
    try:
        pb.ParseFromString(payload)
    except DecodeError as exc:
        raise ProtocolError(f"not a ServerMessage: {exc}") from None
    return decode_server_message(pb)


def parse_status(payload: bytes) -> tuple[str, str]:
    """A :data:`STATUS` payload as ``(code name, details)``."""
    code, _, details = payload.decode(errors="replace").partition(" ")
    return code, details
