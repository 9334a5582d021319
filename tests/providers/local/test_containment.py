"""Nothing a local job starts outlives it, whatever it does to escape (checked by pid).

Each job starts one process per escape technique; each escaped process writes its pid to
a file and sleeps. When the job has ended — on its own, cancelled, or timed out — every
one of those pids must be gone.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import signal
import sys
from pathlib import Path

import grpc
import pytest

from hodei.api.v1 import jobs_pb2, jobs_pb2_grpc
from hodei.domain.states import JobState
from hodei.providers.local import LocalProvider, procfs
from tests.fixtures.control_plane import MakeControlPlane
from tests.fixtures.stubs import job_stub
from tests.server.helpers import submit, wait_done

pytestmark = pytest.mark.slow

# Each line leaves one process behind, which records "<technique> <pid>" in "$P".
ESCAPES = {
    "background": "sh -c 'echo background $$ >> \"$P\"; exec sleep 300' &",
    "nohup": "nohup sh -c 'echo nohup $$ >> \"$P\"; exec sleep 300' >/dev/null 2>&1 &",
    "setsid": "setsid sh -c 'echo setsid $$ >> \"$P\"; exec sleep 300' &",
    "set-m": "(set -m; sh -c 'echo set-m $$ >> \"$P\"; exec sleep 300' &)",
    "setpgid": shlex.join(
        [
            sys.executable,
            "-c",
            "import os; os.setpgid(0, 0); "
            "os.execvp('sh', ['sh', '-c', 'echo setpgid $$ >> \"$P\"; exec sleep 300'])",
        ]
    )
    + " &",
    "double-fork": "( (sh -c 'echo double-fork $$ >> \"$P\"; exec sleep 300' &) & )",
    "daemon": (
        "(setsid sh -c 'echo daemon $$ >> \"$P\"; exec sleep 300' </dev/null >/dev/null 2>&1 &)"
    ),
}
# The job says "ready" once every escaped process has written its pid.
WAIT_ALL = (
    f'while [ "$(wc -l < "$P" 2>/dev/null || echo 0)" -lt {len(ESCAPES)} ]; do sleep 0.01; done'
    "; echo ready"
)


def script(then: str) -> str:
    return "\n".join([*ESCAPES.values(), WAIT_ALL, then])


def escaped(pid_file: Path) -> dict[str, int]:
    pids = {}
    for line in pid_file.read_text().splitlines():
        technique, pid = line.split()
        pids[technique] = int(pid)
    return pids


async def recorded(
    stub: jobs_pb2_grpc.JobServiceStub, job_id: str, pid_file: Path
) -> dict[str, int]:
    """The escaped pids, once the job says every technique has written its own."""
    request = jobs_pb2.StreamLogsRequest(job_id=job_id, follow=True)
    async with asyncio.timeout(30):
        async for chunk in stub.StreamLogs(request):
            if b"ready" in chunk.data:
                break
    return escaped(pid_file)


async def run(
    control_plane_factory: MakeControlPlane, tmp_path: Path, then: str, mode: str
) -> dict[str, int]:
    provider = LocalProvider(max_workers=2, state_dir=tmp_path / "workers")
    plane = await control_plane_factory(providers=[provider])
    pid_file = tmp_path / "pids"
    async with grpc.aio.insecure_channel(plane.address) as channel:
        stub = job_stub(channel)
        job = await submit(
            stub,
            "sh",
            "-c",
            script(then),
            env={"P": str(pid_file)},
            timeout_seconds=2.0 if mode == "timeout" else None,
        )
        pids = await recorded(stub, job.id, pid_file)
        if mode == "cancel":
            await stub.CancelJob(jobs_pb2.CancelJobRequest(id=job.id))
        done = await wait_done(stub, job.id)
    expected = {
        "completion": JobState.SUCCEEDED,
        "cancel": JobState.CANCELLED,
        "timeout": JobState.TIMED_OUT,
    }[mode]
    assert done.state is expected
    return pids


def survivors(pids: dict[str, int]) -> dict[str, int]:
    return {technique: pid for technique, pid in pids.items() if procfs.running(pid)}


@pytest.mark.parametrize(
    ("mode", "then"),
    [("completion", "exit 0"), ("cancel", "sleep 300"), ("timeout", "sleep 300")],
)
async def test_no_process_of_the_job_survives_it(
    control_plane_factory: MakeControlPlane, tmp_path: Path, mode: str, then: str
) -> None:
    pids = await run(control_plane_factory, tmp_path, then, mode)
    assert sorted(pids) == sorted(ESCAPES)
    # The agent kills them all before it reports the job's end: no wait here.
    assert survivors(pids) == {}


async def test_a_job_that_ignores_sigterm_is_killed_after_the_grace(
    control_plane_factory: MakeControlPlane, tmp_path: Path
) -> None:
    ignoring = "trap '' TERM; sleep 300 & wait; sleep 300"
    pids = await run(control_plane_factory, tmp_path, ignoring, "cancel")
    assert survivors(pids) == {}


async def test_what_a_killed_worker_leaves_is_killed(
    control_plane_factory: MakeControlPlane, tmp_path: Path
) -> None:
    """The agent itself dies (SIGKILL, so it cannot clean up): its job's processes fall to
    the launcher, which kills them, and the worker's cgroup (where there is one) is emptied."""
    provider = LocalProvider(max_workers=2, state_dir=tmp_path / "workers")
    plane = await control_plane_factory(providers=[provider])
    pid_file = tmp_path / "pids"
    async with grpc.aio.insecure_channel(plane.address) as channel:
        stub = job_stub(channel)
        job = await submit(stub, "sh", "-c", script("sleep 300"), env={"P": str(pid_file)})
        pids = await recorded(stub, job.id, pid_file)
        [worker] = await provider.list_workers()
        assert worker.name is not None and worker.name.startswith("pid ")
        os.kill(int(worker.name.split()[-1]), signal.SIGKILL)
        async with asyncio.timeout(10):
            while survivors(pids):  # noqa: ASYNC110 - the launcher acts on SIGCHLD, in its time
                await asyncio.sleep(0.02)
        # A lost worker is a disruption: the job runs again on a new worker; end it.
        await stub.CancelJob(jobs_pb2.CancelJobRequest(id=job.id))
        assert (await wait_done(stub, job.id)).state is JobState.CANCELLED
