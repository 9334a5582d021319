"""The control plane with the real local provider: real `hodei worker` processes."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import grpc
import pytest

from hodei.api.v1 import jobs_pb2
from hodei.domain.states import JobState
from hodei.providers.local import LocalProvider
from hodei.server.app import ControlPlane
from tests.fixtures.control_plane import MakeControlPlane
from tests.fixtures.stubs import job_stub
from tests.fixtures.waiting import eventually
from tests.server.helpers import NetworkLocalProvider, logs, output, submit, wait_done

pytestmark = pytest.mark.slow


async def _plane(
    control_plane_factory: MakeControlPlane,
    tmp_path: Path,
    max_workers: int = 16,
    env: dict[str, str] | None = None,
    provider_class: type[LocalProvider] = LocalProvider,
) -> tuple[ControlPlane, LocalProvider]:
    provider = provider_class(max_workers=max_workers, state_dir=tmp_path / "workers")
    plane = await control_plane_factory(providers=[provider], env=env)
    return plane, provider


async def test_shell_job_output_and_exit_code(
    control_plane_factory: MakeControlPlane, tmp_path: Path
) -> None:
    plane, _ = await _plane(control_plane_factory, tmp_path)
    async with grpc.aio.insecure_channel(plane.address) as channel:
        stub = job_stub(channel)
        job = await submit(
            stub, "sh", "-c", "echo out; echo err >&2; printf 'no newline\\377'; exit 3"
        )
        done = await wait_done(stub, job.id)
        chunks = await logs(stub, job.id)
    assert (done.state, done.exit_code, done.reason) == (JobState.FAILED, 3, "NonZeroExit")
    assert output(chunks) == {"STDOUT": b"out\nno newline\xff", "STDERR": b"err\n"}
    # The worker is deleted after its job (an agent slow to exit is killed after a grace).
    await eventually(lambda: plane.workers.active() == [], within=15)


async def test_a_missing_command_fails_as_command_not_found(
    control_plane_factory: MakeControlPlane, tmp_path: Path
) -> None:
    plane, _ = await _plane(control_plane_factory, tmp_path)
    async with grpc.aio.insecure_channel(plane.address) as channel:
        stub = job_stub(channel)
        job = await submit(stub, "/nonexistent/hodei-missing")
        done = await wait_done(stub, job.id)
    assert (done.state, done.exit_code, done.reason) == (JobState.FAILED, 127, "CommandNotFound")
    assert (
        done.message == "/nonexistent/hodei-missing: command not found (No such file or directory)"
    )


async def test_timeout_and_cancel_end_the_process_group(
    control_plane_factory: MakeControlPlane, tmp_path: Path
) -> None:
    plane, _ = await _plane(control_plane_factory, tmp_path)
    async with grpc.aio.insecure_channel(plane.address) as channel:
        stub = job_stub(channel)
        timed = await submit(stub, "sleep", "30", timeout_seconds=0.5)
        cancelled = await submit(stub, "sleep", "30")
        async for view in stub.WatchJob(jobs_pb2.WatchJobRequest(id=cancelled.id)):
            if view.started_at:
                break
        await stub.CancelJob(jobs_pb2.CancelJobRequest(id=cancelled.id))
        assert (await wait_done(stub, cancelled.id)).state is JobState.CANCELLED
        assert (await wait_done(stub, timed.id)).state is JobState.TIMED_OUT


async def test_many_jobs_with_a_worker_cap(
    control_plane_factory: MakeControlPlane, tmp_path: Path
) -> None:
    plane, _ = await _plane(control_plane_factory, tmp_path, max_workers=8)
    async with grpc.aio.insecure_channel(plane.address) as channel:
        stub = job_stub(channel)
        jobs = await asyncio.gather(*(submit(stub, "echo", str(i)) for i in range(40)))
        done = await asyncio.gather(*(wait_done(stub, job.id) for job in jobs))
        assert [j.state for j in done] == [JobState.SUCCEEDED] * 40
        texts = [output(await logs(stub, job.id))["STDOUT"] for job in jobs]
    assert texts == [f"{i}\n".encode() for i in range(40)]


async def test_restart_on_same_port_worker_reconnects_and_delivers(
    control_plane_factory: MakeControlPlane, tmp_path: Path
) -> None:
    plane, _ = await _plane(control_plane_factory, tmp_path)
    port = plane.grpc_port
    async with grpc.aio.insecure_channel(plane.address) as channel:
        stub = job_stub(channel)
        job = await submit(stub, "sh", "-c", "echo before; sleep 1; echo after")
        async for view in stub.WatchJob(jobs_pb2.WatchJobRequest(id=job.id)):
            if view.started_at:
                break
    assert _live_workers(tmp_path / "workers")
    await plane.stop(grace=0)  # as if killed: the worker process keeps running
    provider = LocalProvider(max_workers=4, state_dir=tmp_path / "workers")
    plane = await control_plane_factory(
        providers=[provider], env={"HODEI_GRPC_ADDRESS": f"127.0.0.1:{port}"}
    )
    async with grpc.aio.insecure_channel(plane.address) as channel:
        stub = job_stub(channel)
        done = await wait_done(stub, job.id)
        text = output(await logs(stub, job.id))["STDOUT"]
    assert (done.state, done.exit_code) == (JobState.SUCCEEDED, 0)
    assert text == b"before\nafter\n"
    await eventually(lambda: not _live_workers(tmp_path / "workers"))


async def test_restart_without_reconnect_is_worker_lost(
    control_plane_factory: MakeControlPlane, tmp_path: Path
) -> None:
    # Agents that dial gRPC only: the next control plane listens on another port.
    plane, _ = await _plane(control_plane_factory, tmp_path, provider_class=NetworkLocalProvider)
    async with grpc.aio.insecure_channel(plane.address) as channel:
        stub = job_stub(channel)
        job = await submit(stub, "sleep", "30")
        async for view in stub.WatchJob(jobs_pb2.WatchJobRequest(id=job.id)):
            if view.started_at:
                break
    assert _live_workers(tmp_path / "workers")
    await plane.stop(grace=0)
    # Another port: no reconnect. No platform retries, so the loss itself ends the job.
    no_retries = {"HODEI_PLATFORM_RETRIES": "0"}
    plane, _ = await _plane(
        control_plane_factory, tmp_path, env=no_retries, provider_class=NetworkLocalProvider
    )
    async with grpc.aio.insecure_channel(plane.address) as channel:
        stub = job_stub(channel)
        done = await wait_done(stub, job.id)
    assert (done.state, done.reason) == (JobState.FAILED, "WorkerLost")
    await eventually(lambda: not _live_workers(tmp_path / "workers"))


async def test_local_agents_reconnect_to_a_restarted_control_plane_on_its_socket(
    control_plane_factory: MakeControlPlane, tmp_path: Path
) -> None:
    """The socket is beside the database: the next control plane listens where the agents
    look, even on another gRPC port, and their jobs finish."""
    plane, _ = await _plane(control_plane_factory, tmp_path)
    async with grpc.aio.insecure_channel(plane.address) as channel:
        stub = job_stub(channel)
        job = await submit(stub, "sh", "-c", "sleep 2; echo finished")
        async for view in stub.WatchJob(jobs_pb2.WatchJobRequest(id=job.id)):
            if view.started_at:
                break
    await plane.stop(grace=0)
    plane, _ = await _plane(control_plane_factory, tmp_path, env={"HODEI_PLATFORM_RETRIES": "0"})
    async with grpc.aio.insecure_channel(plane.address) as channel:
        stub = job_stub(channel)
        done = await wait_done(stub, job.id)
        chunks = await logs(stub, job.id)
    assert (done.state, done.exit_code) == (JobState.SUCCEEDED, 0)
    assert output(chunks)["STDOUT"] == b"finished\n"


def _live_workers(state_dir: Path) -> list[int]:
    """Worker processes recorded in the local provider's pid files that still run."""
    pids = []
    for path in state_dir.rglob("*.json"):
        pid = json.loads(path.read_text()).get("pid")
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        pids.append(pid)
    return pids


@pytest.mark.timeout(300)
async def test_200_jobs_with_local_workers(
    control_plane_factory: MakeControlPlane, tmp_path: Path
) -> None:
    plane, _ = await _plane(control_plane_factory, tmp_path, max_workers=16)
    async with grpc.aio.insecure_channel(plane.address) as channel:
        stub = job_stub(channel)
        jobs = await asyncio.gather(*(submit(stub, "true") for _ in range(200)))
        done = await asyncio.gather(*(wait_done(stub, job.id) for job in jobs))
    failed = [(j.state, j.reason, j.message) for j in done if j.state is not JobState.SUCCEEDED]
    assert failed == []
    await eventually(lambda: not _live_workers(tmp_path / "workers"), within=30)


async def test_local_agents_reach_the_control_plane_on_its_socket_not_over_grpc(
    control_plane_factory: MakeControlPlane, tmp_path: Path
) -> None:
    # What workers would dial over gRPC leads nowhere: only the socket can carry the job.
    plane, _ = await _plane(
        control_plane_factory, tmp_path, env={"HODEI_SERVER_ADDRESS": "127.0.0.1:9"}
    )
    async with grpc.aio.insecure_channel(plane.address) as channel:
        stub = job_stub(channel)
        job = await submit(stub, "sh", "-c", 'echo "$HODEI_SERVER_SOCKET"')
        done = await wait_done(stub, job.id)
        chunks = await logs(stub, job.id)
    assert (done.state, done.exit_code) == (JobState.SUCCEEDED, 0)
    assert output(chunks)["STDOUT"] == b"\n"  # the agent's variables are not the job's
