"""Frames of the worker protocol on the local socket: what goes in comes out, and bytes
that are not a frame are refused with the reason (no sockets: a fed StreamReader)."""

from __future__ import annotations

import asyncio
import struct

import pytest

from hodei.api import frames
from hodei.api.messages import AssignJob, JobResult, ProtocolError, Register
from hodei.domain.ids import JobId, WorkerId
from hodei.domain.jobs import JobSpec


def reader_of(data: bytes) -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    return reader


async def test_messages_and_the_status_come_out_as_they_went_in() -> None:
    register = Register(WorkerId("w-1"), token="t")
    result = JobResult(JobId("j-1"), 3, last_sequence=7)
    assign = AssignJob(JobId("j-1"), JobSpec(command=("echo", "hi")))
    data = (
        frames.worker_frame(register)
        + frames.worker_frame(result)
        + frames.server_frame(assign)
        + frames.status_frame("PERMISSION_DENIED", "worker w-1 may not")
    )
    reader = reader_of(data)
    read = [await frames.read_frame(reader) for _ in range(5)]
    assert read[4] is None  # the end, between frames
    kinds = [frame[0] for frame in read if frame is not None]
    assert kinds == [frames.MESSAGE, frames.MESSAGE, frames.MESSAGE, frames.STATUS]
    payloads = [frame[1] for frame in read if frame is not None]
    assert frames.parse_worker_frame(payloads[0]) == register
    assert frames.parse_worker_frame(payloads[1]) == result
    assert frames.parse_server_frame(payloads[2]) == assign
    assert frames.parse_status(payloads[3]) == ("PERMISSION_DENIED", "worker w-1 may not")
    assert frames.parse_status(frames.status_frame("OK")[5:]) == ("OK", "")


async def test_a_frame_cut_off_or_too_long_is_refused() -> None:
    whole = frames.worker_frame(Register(WorkerId("w-1"), token="t"))
    with pytest.raises(frames.FrameError, match=r"inside a frame$"):
        await frames.read_frame(reader_of(whole[:-1]))
    with pytest.raises(frames.FrameError, match="inside a frame header"):
        await frames.read_frame(reader_of(whole[:3]))
    too_long = struct.pack(">IB", frames.MAX_FRAME + 1, frames.MESSAGE)
    with pytest.raises(frames.FrameError, match=f"accepted: 1 to {frames.MAX_FRAME}"):
        await frames.read_frame(reader_of(too_long))
    with pytest.raises(frames.FrameError, match="a frame of 0 bytes"):
        await frames.read_frame(reader_of(struct.pack(">IB", 0, 1)))


def test_a_payload_protobuf_refuses_names_what_is_wrong() -> None:
    with pytest.raises(ProtocolError):
        frames.parse_worker_frame(b"\xff\xff\xff")
    # Register.worker_id (field 1 of the Register in field 1) that is not UTF-8.
    register = b"\x0a\x03" + b"\x0a\x01\xff"
    with pytest.raises(ProtocolError, match="not valid UTF-8"):
        frames.parse_worker_frame(register)
    with pytest.raises(ProtocolError):
        frames.parse_server_frame(b"\x0a\x05\x0a")
