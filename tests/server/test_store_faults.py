"""Store faults (disk full, I/O error, locked): reported at a bounded rate, visible on
/readyz, jobs held rather than lost, and everything resumes once the store recovers."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import replace
from pathlib import Path

import grpc
import pytest

from hodei.api.messages import AssignJob, JobResult, JobStarted, LogAck, LogBatch, ResultAck
from hodei.api.v1 import jobs_pb2, types_pb2
from hodei.domain.ids import JobId
from hodei.domain.logs import LogChunk, LogStream
from hodei.domain.states import JobState
from hodei.providers.base import WorkerRequest
from hodei.providers.fake import FakeProvider
from hodei.store import SqliteStore
from tests.fixtures.control_plane import FAST, MakeControlPlane
from tests.fixtures.faulty_store import FaultyStore
from tests.fixtures.scripted_worker import StreamEnded, WorkerClient, scripted_agent
from tests.fixtures.stubs import job_stub
from tests.fixtures.waiting import eventually
from tests.server.helpers import logs, output, readyz, restarts, submit, wait_done, wait_state

QUICK = replace(FAST, restart_backoff=(0.05, 0.1))


async def test_readyz_names_the_failing_store_until_it_recovers(
    control_plane_factory: MakeControlPlane,
) -> None:
    store = FaultyStore()
    plane = await control_plane_factory(providers=[FakeProvider("local")], store=store)
    assert await readyz(plane) == (200, "store: ok\nprovider local: ok\n")
    store.fail("disk full")
    status, report = await readyz(plane)
    assert (status, report.splitlines()[0]) == (503, "store: injected disk full in ping")
    store.heal()
    assert (await readyz(plane))[0] == 200


async def test_queued_and_new_jobs_run_once_the_store_recovers(
    control_plane_factory: MakeControlPlane, caplog: pytest.LogCaptureFixture
) -> None:
    store = FaultyStore()
    provider = FakeProvider("local", on_create=scripted_agent)
    plane = await control_plane_factory(providers=[provider], store=store, tuning=QUICK)
    async with grpc.aio.insecure_channel(plane.address) as channel:
        stub = job_stub(channel)
        store.fail("disk full", only=("save_worker",))  # jobs are taken, workers cannot be
        queued = await submit(stub, "echo", "queued")
        await eventually(lambda: restarts(plane, "scheduler") >= 3)
        assert (await stub.GetJob(jobs_pb2.GetJobRequest(id=queued.id))).state == (types_pb2.QUEUED)
        store.fail("disk full")
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await submit(stub, "echo", "refused")
        assert refused.value.code() is grpc.StatusCode.UNAVAILABLE
        assert "store is failing: injected disk full in save_job" in str(refused.value.details())
        store.heal()
        assert (await wait_done(stub, queued.id)).state is JobState.SUCCEEDED
        new = await submit(stub, "echo", "new")
        assert (await wait_done(stub, new.id)).state is JobState.SUCCEEDED
    # The scheduler failed dozens of times; store faults were logged at most once a second.
    lines = [r for r in caplog.records if r.getMessage().startswith("store fault (disk full)")]
    assert 1 <= len(lines) <= 3
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR and r.exc_info]


async def test_output_that_cannot_be_stored_is_held_until_the_store_recovers(
    control_plane_factory: MakeControlPlane,
) -> None:
    store = FaultyStore()
    requests: list[WorkerRequest] = []
    provider = FakeProvider("local", on_create=requests.append)
    plane = await control_plane_factory(providers=[provider], store=store)
    async with grpc.aio.insecure_channel(plane.address) as channel:
        stub = job_stub(channel)
        job = await submit(stub, "x")
        await eventually(lambda: bool(requests))
        agent = WorkerClient(plane.address)
        resume = await agent.register(requests[0].worker_id, token=requests[0].token)
        await agent.expect(AssignJob)
        await agent.send(JobStarted(JobId(job.id)))
        await wait_state(stub, job.id, JobState.RUNNING)
        store.fail("disk full", only=("append_logs",))
        line = LogChunk(JobId(job.id), 1, LogStream.STDOUT, b"kept\n")
        await agent.send(LogBatch((line,)))
        with pytest.raises(StreamEnded) as told:
            await agent.recv()
        await agent.close()
        # The agent is told why; the job is held, not failed; its output was not acked.
        assert told.value.code is grpc.StatusCode.UNAVAILABLE
        assert told.value.details == (
            "the control plane's store is failing: injected disk full in append_logs"
        )
        assert (await stub.GetJob(jobs_pb2.GetJobRequest(id=job.id))).state == types_pb2.RUNNING
        store.heal()
        again = WorkerClient(plane.address)
        await again.register(requests[0].worker_id, resume_token=resume)
        await again.send(LogBatch((line,)))  # sent again, as the agent does
        assert await again.expect(LogAck) == LogAck(JobId(job.id), 1)
        await again.send(JobResult(JobId(job.id), 0, last_sequence=1))
        await again.expect(ResultAck)
        await again.close()
        assert (await wait_done(stub, job.id)).state is JobState.SUCCEEDED
        assert output(await logs(stub, job.id))["STDOUT"] == b"kept\n"


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 5 MiB tmpfs (root only), unmounted at teardown; ``resize(MiB)`` gives space back."""
    mountpoint = tmp_path / "small"
    mountpoint.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=5M", "tmpfs", str(mountpoint)], check=True)
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "--lazy", str(mountpoint)], check=True)


def resize(mountpoint: Path, mebibytes: int) -> None:
    subprocess.run(["mount", "-o", f"remount,size={mebibytes}M", str(mountpoint)], check=True)


@pytest.mark.slow
async def test_a_real_full_disk_holds_the_job_and_everything_resumes_when_space_returns(
    control_plane_factory: MakeControlPlane,
    small_tmpfs: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from hodei.providers.local import LocalProvider

    started = time.monotonic()
    provider = LocalProvider(max_workers=1, state_dir=tmp_path / "workers")
    plane = await control_plane_factory(
        providers=[provider], store=SqliteStore(small_tmpfs / "hodei.db"), tuning=QUICK
    )
    try:
        async with grpc.aio.insecure_channel(plane.address) as channel:
            stub = job_stub(channel)
            big = await submit(stub, "head", "-c", "50000000", "/dev/zero")  # 50 MB on 5 MiB
            queued = await submit(stub, "echo", "queued")  # behind it: one worker at a time
            reports: list[tuple[int, str]] = []

            async def full() -> bool:
                reports.append(await readyz(plane))
                return reports[-1][0] == 503

            await eventually_true(full, within=60)
            assert "store: SQLite store" in reports[-1][1]
            assert "database or disk is full" in reports[-1][1]
            view = await stub.GetJob(jobs_pb2.GetJobRequest(id=big.id))
            assert view.state == types_pb2.RUNNING  # held, not failed
            resize(small_tmpfs, 200)
            done = await wait_done(stub, big.id)
            assert (done.state, done.exit_code) == (JobState.SUCCEEDED, 0)
            assert len(output(await logs(stub, big.id))["STDOUT"]) == 50_000_000
            assert (await wait_done(stub, queued.id)).state is JobState.SUCCEEDED
            assert (await readyz(plane))[0] == 200
    finally:
        await plane.stop(grace=0)  # closes the database before the tmpfs goes
    seconds = time.monotonic() - started
    faults = [r for r in caplog.records if r.getMessage().startswith("store fault")]
    assert 1 <= len(faults) <= 3 * (seconds + 1)  # at most one a second per kind (3 kinds)


async def eventually_true(check: Callable[[], Awaitable[bool]], *, within: float) -> None:
    async with asyncio.timeout(within):
        while not await check():  # noqa: ASYNC110
            await asyncio.sleep(0.01)
