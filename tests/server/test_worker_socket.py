"""Agents on the control plane's host speak the worker protocol on its Unix socket: the
same session as over gRPC (token, job, output, result, refusals), a private place that
goes with the control plane, and bad bytes answered with a status naming the fault.

The provider here creates nothing (``manual``); the test plays the agent with the
request's token, through the agent's own
:class:`~hodei.worker.socket_connection.SocketConnection`.
"""

from __future__ import annotations

import asyncio
import os
import socket
import stat
import struct
from pathlib import Path

import pytest

from hodei.api import frames
from hodei.api.messages import (
    AssignJob,
    JobResult,
    JobStarted,
    LogAck,
    LogBatch,
    Register,
    Registered,
    ResultAck,
    ServerMessage,
)
from hodei.domain.ids import JobId, WorkerId
from hodei.domain.logs import LogChunk, LogStream
from hodei.domain.states import JobState
from hodei.providers.base import WorkerRequest
from hodei.providers.fake import FakeProvider
from hodei.worker.agent import dial
from hodei.worker.connection import Connection
from hodei.worker.socket_connection import SocketConnection
from hodei.worker.stream_errors import ConnectionLost, Rejected
from tests.fixtures.control_plane import MakeControlPlane, Manual
from tests.server.helpers import logs, output, wait_done


async def socket_job(manual: Manual, *command: str) -> tuple[JobId, WorkerRequest, str]:
    """Submit a job; its id, its worker's request and the socket that request names."""
    job_id, request = await manual.job(*command)
    assert request.server_socket is not None
    return JobId(job_id), request, request.server_socket


async def expect(connection: SocketConnection, kind: type[ServerMessage]) -> ServerMessage:
    message = await asyncio.wait_for(connection.receive(), 10)
    assert isinstance(message, kind), message
    return message


async def test_a_job_runs_over_the_socket_as_over_grpc(manual: Manual) -> None:
    job_id, request, path = await socket_job(manual, "echo", "hi")
    agent = await SocketConnection.open(path)
    await agent.send(Register(request.worker_id, token=request.token))
    registered = await expect(agent, Registered)
    assert isinstance(registered, Registered) and registered.resume_token
    assign = await expect(agent, AssignJob)
    assert isinstance(assign, AssignJob) and assign.spec.command == ("echo", "hi")
    await agent.send(JobStarted(job_id))
    chunk = LogChunk(job_id, 1, LogStream.STDOUT, b"hi\n")
    await agent.send(LogBatch((chunk,)))
    ack = await expect(agent, LogAck)
    assert isinstance(ack, LogAck) and ack.sequence == 1
    await agent.send(JobResult(job_id, 0, last_sequence=1))
    await expect(agent, ResultAck)
    await agent.close()
    done = await wait_done(manual.stub, job_id)
    assert (done.state, done.exit_code) == (JobState.SUCCEEDED, 0)
    assert output(await logs(manual.stub, job_id))["STDOUT"] == b"hi\n"


async def test_a_used_token_is_refused_on_the_socket_too(manual: Manual) -> None:
    _, request, path = await socket_job(manual, "true")
    first = await SocketConnection.open(path)
    await first.send(Register(request.worker_id, token=request.token))
    await expect(first, Registered)
    await first.close()
    again = await SocketConnection.open(path)
    await again.send(Register(request.worker_id, token=request.token))
    with pytest.raises(Rejected, match=r"^UNAUTHENTICATED: .*already used"):
        await asyncio.wait_for(again.receive(), 10)
    await again.close()
    stranger = await SocketConnection.open(path)
    await stranger.send(Register(WorkerId("w-nobody"), token="forged"))
    with pytest.raises(Rejected, match=r"^(UNAUTHENTICATED|NOT_FOUND|PERMISSION_DENIED): "):
        await asyncio.wait_for(stranger.receive(), 10)
    await stranger.close()


async def raw_exchange(path: str, data: bytes) -> tuple[str, str]:
    """Write ``data`` on a new connection; the status the control plane ends it with."""
    reader, writer = await asyncio.open_unix_connection(path)
    writer.write(data)
    await writer.drain()
    try:
        while True:
            frame = await asyncio.wait_for(frames.read_frame(reader), 10)
            assert frame is not None, "the stream ended without a status"
            if frame[0] == frames.STATUS:
                return frames.parse_status(frame[1])
    finally:
        writer.close()


async def test_bytes_that_are_not_the_protocol_end_the_stream_naming_the_fault(
    manual: Manual,
) -> None:
    _, request, path = await socket_job(manual, "true")
    not_utf8 = struct.pack(">IB", 6, frames.MESSAGE) + b"\x0a\x03\x0a\x01\xff"
    code, details = await raw_exchange(path, not_utf8)
    assert code == "INVALID_ARGUMENT" and "not valid UTF-8" in details
    too_long = struct.pack(">IB", frames.MAX_FRAME + 1, frames.MESSAGE)
    code, details = await raw_exchange(path, too_long)
    assert code == "INVALID_ARGUMENT" and f"accepted: 1 to {frames.MAX_FRAME}" in details
    unknown_kind = struct.pack(">IB", 1, 9)
    code, details = await raw_exchange(path, unknown_kind)
    assert (code, details) == ("INVALID_ARGUMENT", "frame kind 9 (accepted: 1, a message)")
    not_register = frames.worker_frame(JobStarted(JobId("j-x")))
    code, details = await raw_exchange(path, not_register)
    assert (code, details) == ("INVALID_ARGUMENT", "the first message must be Register")
    # None of it cost the worker its token.
    agent = await SocketConnection.open(path)
    await agent.send(Register(request.worker_id, token=request.token))
    await expect(agent, Registered)
    await agent.close()


async def test_the_socket_is_private_and_goes_with_the_control_plane(manual: Manual) -> None:
    _, _, path = await socket_job(manual, "true")
    assert stat.S_ISSOCK(os.stat(path).st_mode)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600  # only this user may connect
    await manual.plane.stop(grace=0)
    with pytest.raises(FileNotFoundError):
        os.stat(path)
    with pytest.raises(OSError):
        await SocketConnection.open(path)


async def test_a_restarted_control_plane_listens_where_its_agents_look(
    control_plane_factory: MakeControlPlane,
) -> None:
    """Beside the database: agents adopted after a restart find the new control plane at
    the path they were given, even where a killed one left its socket file behind."""
    first = await control_plane_factory(providers=[FakeProvider("local")])
    path = first.worker_socket
    assert path is not None
    await first.stop(grace=0)
    with socket.socket(socket.AF_UNIX) as stale:  # what a killed one leaves
        stale.bind(str(path))
    second = await control_plane_factory(providers=[FakeProvider("local")])
    assert second.worker_socket == path
    agent = await SocketConnection.open(str(path))
    await agent.send(Register(WorkerId("w-nobody"), token="forged"))
    with pytest.raises(Rejected):  # a live control plane answered
        await asyncio.wait_for(agent.receive(), 10)
    await agent.close()


async def test_an_agent_finding_no_socket_dials_grpc(manual: Manual, tmp_path: Path) -> None:
    _, request, path = await socket_job(manual, "true")
    over_socket = await dial(manual.plane.address, socket=path, tls=None)
    assert isinstance(over_socket, SocketConnection)
    await over_socket.close()
    # The socket of a control plane that has restarted since is gone: gRPC it is.
    connection = await dial(manual.plane.address, socket=str(tmp_path / "gone.sock"), tls=None)
    assert isinstance(connection, Connection)
    await connection.send(Register(request.worker_id, token=request.token))
    assert isinstance(await asyncio.wait_for(connection.receive(), 10), Registered)
    await connection.close()


async def test_an_agent_sees_the_stream_end_when_the_control_plane_stops(manual: Manual) -> None:
    _, request, path = await socket_job(manual, "true")
    agent = await SocketConnection.open(path)
    await agent.send(Register(request.worker_id, token=request.token))
    await expect(agent, Registered)
    await expect(agent, AssignJob)
    await manual.plane.stop(grace=0)
    with pytest.raises(ConnectionLost):
        await asyncio.wait_for(agent.receive(), 10)
    await agent.close()
