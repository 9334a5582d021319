"""The local provider with real ``hodei worker`` processes against a scripted control plane."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

import pytest

from hodei.api.v1 import types_pb2
from hodei.domain.ids import JobId, WorkerId
from hodei.providers.base import ProviderError, WorkerPhase, WorkerRequest, WorkerStatus
from hodei.providers.local import LocalProvider, procfs
from hodei.providers.local.cgroups import Cgroups
from hodei.supervision import Background
from tests.worker.fake_control_plane import JOB_ID, TOKEN, WORKER_ID, Script, fake_control_plane

pytestmark = pytest.mark.slow


class Statuses:
    """A listener that keeps every status and lets a test await a phase."""

    def __init__(self) -> None:
        self.seen: list[WorkerStatus] = []
        self._changed = asyncio.Event()

    async def __call__(self, status: WorkerStatus) -> None:
        self.seen.append(status)
        self._changed.set()

    async def wait_for(self, phase: WorkerPhase) -> WorkerStatus:
        while True:
            for status in self.seen:
                if status.phase is phase:
                    return status
            self._changed.clear()
            await asyncio.wait_for(self._changed.wait(), 30)


def gone_soon(pid: int) -> bool:
    """Whether ``pid`` has stopped running within a few seconds (signals land asynchronously)."""
    deadline = time.monotonic() + 5
    while procfs.running(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def request(address: str, token: str = TOKEN) -> WorkerRequest:
    return WorkerRequest(
        worker_id=WorkerId(WORKER_ID),
        job_id=JobId(JOB_ID),
        token=token,
        server_address=address,
    )


def provider(state_dir: Path) -> LocalProvider:
    return LocalProvider(
        max_workers=3, state_dir=state_dir, command=[sys.executable, "-m", "hodei.worker.launcher"]
    )


async def test_worker_runs_the_job_and_its_exit_is_reported(tmp_path: Path) -> None:
    statuses = Statuses()
    local = provider(tmp_path)
    await local.start(statuses)
    async with fake_control_plane(Script(types_pb2.JobSpec(shell="echo hi"))) as (cp, address):
        created = await local.create_worker(request(address))
        assert created.phase is WorkerPhase.RUNNING
        assert await local.create_worker(request(address)) == created  # idempotent
        exited = await statuses.wait_for(WorkerPhase.EXITED)
    assert exited.exit_code == 0
    assert cp.record.output(types_pb2.STDOUT) == b"hi\n"
    assert not list((tmp_path / "workers").glob("*.json"))
    await local.delete_worker(WorkerId(WORKER_ID))
    assert await local.list_workers() == []
    await local.close()


async def test_jobs_do_not_see_the_control_planes_api_token(tmp_path: Path) -> None:
    statuses = Statuses()
    local = LocalProvider(
        max_workers=1,
        state_dir=tmp_path,
        env={**os.environ, "HODEI_API_TOKEN": "secret", "VISIBLE": "yes"},
    )
    await local.start(statuses)
    spec = types_pb2.JobSpec(shell='printf "%s|%s" "$VISIBLE" "$HODEI_API_TOKEN"')
    async with fake_control_plane(Script(spec)) as (cp, address):
        await local.create_worker(request(address))
        await statuses.wait_for(WorkerPhase.EXITED)
    assert cp.record.output(types_pb2.STDOUT) == b"yes|"
    await local.delete_worker(WorkerId(WORKER_ID))
    await local.close()


async def test_delete_kills_the_worker_and_its_job(tmp_path: Path) -> None:
    statuses = Statuses()
    local = provider(tmp_path)
    await local.start(statuses)
    async with fake_control_plane(Script(types_pb2.JobSpec(shell="sleep 60"))) as (cp, address):
        created = await local.create_worker(request(address))
        await cp.record.started_event.wait()
        job_pid = cp.record.started[0].pid
        worker_pid = int((created.name or "").split()[-1])
        await local.delete_worker(WorkerId(WORKER_ID))
    assert gone_soon(job_pid)
    assert gone_soon(worker_pid)
    assert statuses.seen[-1].phase is WorkerPhase.GONE
    await local.close()


async def test_a_restarted_provider_lists_and_kills_workers_it_did_not_start(
    tmp_path: Path,
) -> None:
    first = provider(tmp_path)
    await first.start(Statuses())
    async with fake_control_plane(Script(types_pb2.JobSpec(shell="sleep 60"))) as (cp, address):
        await first.create_worker(request(address))
        await cp.record.started_event.wait()
        job_pid = cp.record.started[0].pid
        await first.close()  # the control plane goes away; the worker keeps running

        second = provider(tmp_path)
        statuses = Statuses()
        await second.start(statuses)
        listed = await second.list_workers()
        assert [(s.worker_id, s.job_id, s.phase) for s in listed] == [
            (WORKER_ID, JOB_ID, WorkerPhase.RUNNING)
        ]
        await second.delete_worker(WorkerId(WORKER_ID))
    assert gone_soon(job_pid)
    assert await second.list_workers() == []
    await second.close()


async def test_a_worker_that_fails_reports_its_code_and_log_tail(tmp_path: Path) -> None:
    statuses = Statuses()
    local = provider(tmp_path)
    await local.start(statuses)
    async with fake_control_plane(Script(types_pb2.JobSpec(shell="true"), reject=True)) as (
        _,
        address,
    ):
        await local.create_worker(request(address, token="wrong"))
        exited = await statuses.wait_for(WorkerPhase.EXITED)
    assert exited.exit_code == 3
    assert "refused this worker" in (exited.message or "")
    await local.delete_worker(WorkerId(WORKER_ID))
    await local.close()


async def test_capacity_and_health(tmp_path: Path) -> None:
    local = provider(tmp_path)
    assert local.name == "local"
    assert local.capacity == 3
    assert (await local.health()).ok
    broken = LocalProvider(max_workers=1, state_dir=tmp_path, command=["/nonexistent/hodei"])
    health = await broken.health()
    assert not health.ok and "/nonexistent/hodei" in health.message


async def test_a_command_that_cannot_start_is_a_provider_error(tmp_path: Path) -> None:
    local = LocalProvider(max_workers=1, state_dir=tmp_path, command=["/nonexistent/hodei"])
    await local.start(Statuses())
    with pytest.raises(ProviderError, match="/nonexistent/hodei"):
        await local.create_worker(request("127.0.0.1:1"))
    assert local.status(WorkerId(WORKER_ID)) is None
    await local.close()


class BrokenCgroups(Cgroups):
    """Fails the cleanup that follows a worker's exit: its watcher dies with an exception."""

    def kill(self, worker_id: str) -> None:
        raise OSError("injected: cgroup.procs unreadable")


async def test_a_watcher_killed_by_an_exception_settles_its_worker(tmp_path: Path) -> None:
    statuses = Statuses()
    counted: list[str] = []
    local = LocalProvider(
        max_workers=1,
        state_dir=tmp_path,
        command=[sys.executable, "-m", "hodei.worker.launcher"],
        cgroups=BrokenCgroups(),
        loops=Background(on_restart=counted.append),
    )
    await local.start(statuses)
    async with fake_control_plane(Script(types_pb2.JobSpec(shell="true"))) as (_, address):
        await local.create_worker(request(address))
        failed = await statuses.wait_for(WorkerPhase.FAILED)
    assert (failed.reason, failed.worker_id) == ("WorkerLost", WORKER_ID)
    assert failed.message is not None and failed.message.endswith(
        "failed: OSError: injected: cgroup.procs unreadable"
    )
    assert counted == ["local-worker-watch"]
    await local.delete_worker(WorkerId(WORKER_ID))
    await local.close()
