"""Workers forked by the launcher start clean: what one job changes, the next never sees.

Each job reports its working directory, umask, open descriptors, session and variable
names; a job in between changes all of them before reporting. The job after it must
report exactly what the job before it did, in a session of its own. The next worker is
forked ahead of its job (a spare, already in its cgroup); the job runs in it, and when
it is gone a fork on demand takes its place.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from hodei.api.v1 import jobs_pb2_grpc
from hodei.domain.states import JobState
from hodei.providers.local import LocalProvider, procfs
from hodei.server.app import ControlPlane
from hodei.worker import containment
from tests.fixtures.control_plane import MakeControlPlane
from tests.fixtures.stubs import job_stub
from tests.fixtures.waiting import eventually
from tests.server.helpers import logs, output, submit, wait_done

pytestmark = pytest.mark.slow

REPORT = (
    "import json, os; umask = os.umask(0); os.umask(umask); print(json.dumps({"
    "'cwd': os.getcwd(), 'umask': umask, 'fds': sorted(os.listdir('/proc/self/fd')),"
    "'sid': os.getsid(0), 'env': sorted(os.environ), 'cgroup': [line[3:] for line in "
    "open('/proc/self/cgroup').read().splitlines() if line.startswith('0::')]}))"
)
PER_WORKER = ("sid", "cgroup")  # what is each worker's own
CHANGES = "cd /tmp && umask 077 && export LEAKED=yes && exec 7>/dev/null 8</dev/null && exec "


async def report(stub: jobs_pb2_grpc.JobServiceStub, prefix: str = "") -> dict[str, object]:
    job = await submit(stub, "sh", "-c", f'{prefix}"$0" -c "$1"', sys.executable, REPORT)
    done = await wait_done(stub, job.id)
    assert done.state is JobState.SUCCEEDED, done.message
    return json.loads(output(await logs(stub, job.id))["STDOUT"])  # type: ignore[no-any-return]


@dataclass
class OneWorker:
    """A control plane whose local provider runs one worker at a time."""

    provider: LocalProvider
    plane: ControlPlane
    stub: jobs_pb2_grpc.JobServiceStub


@pytest.fixture
async def one(control_plane_factory: MakeControlPlane, tmp_path: Path) -> AsyncIterator[OneWorker]:
    provider = LocalProvider(max_workers=1, state_dir=tmp_path / "workers")
    plane = await control_plane_factory(providers=[provider])
    async with grpc.aio.insecure_channel(plane.address) as channel:
        yield OneWorker(provider, plane, job_stub(channel))


def spare_of(provider: LocalProvider) -> int | None:
    """The launcher's one child while no job runs: the spare, if there is exactly one."""
    launcher = provider.launcher_pid
    found = containment.children(launcher) if launcher is not None else []
    return found[0] if len(found) == 1 else None


async def ready_spare(provider: LocalProvider) -> int:
    """The spare, once the launcher has forked it after the job before."""
    await eventually(lambda: spare_of(provider) is not None)
    spare = spare_of(provider)
    assert spare is not None
    return spare


def cgroup_v2(pid: int) -> str:
    """The process's cgroup v2 path (``0::`` line of ``/proc/PID/cgroup``)."""
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        if line.startswith("0::"):
            return line[3:]
    return ""


def same_but_per_worker(a: dict[str, object], b: dict[str, object]) -> bool:
    return {k: v for k, v in a.items() if k not in PER_WORKER} == {
        k: v for k, v in b.items() if k not in PER_WORKER
    }


async def test_a_job_sees_nothing_of_the_job_before(one: OneWorker) -> None:
    before = await report(one.stub)
    changed = await report(one.stub, CHANGES)
    after = await report(one.stub)
    # The middle job did change its own process...
    assert changed["cwd"] == "/tmp" and changed["umask"] == 0o077
    assert "LEAKED" in changed["env"]  # type: ignore[operator]
    assert {"7", "8"} <= set(changed["fds"])  # type: ignore[call-overload]
    # ...and the next one starts exactly as the first did, in a new session.
    assert same_but_per_worker(after, before)
    assert len({before["sid"], changed["sid"], after["sid"]}) == 3
    assert before["fds"] == ["0", "1", "2", "3"]  # stdin, the two pipes, the listing itself


async def test_a_launcher_that_died_is_replaced(one: OneWorker) -> None:
    first = await report(one.stub)
    launcher = one.provider.launcher_pid
    assert launcher is not None
    os.kill(launcher, signal.SIGKILL)
    second = await report(one.stub)
    assert one.provider.launcher_pid not in (None, launcher)
    assert second["env"] == first["env"]


async def test_the_next_job_runs_in_the_spare_forked_before_it(one: OneWorker) -> None:
    first = await report(one.stub)
    spare = await ready_spare(one.provider)
    # Ready before its job: in a session of its own and, where the host lets Hodei have
    # cgroups, already in a cgroup of its own.
    assert os.getsid(spare) == spare
    in_cgroup = cgroup_v2(spare)
    if one.provider.cgroups.unified is not None:
        assert in_cgroup.rpartition("/")[2].startswith("slot-")
    second = await report(one.stub)
    assert second["sid"] == spare  # the job's session is its worker's: the spare's
    assert second["cgroup"] == [in_cgroup]  # ...and so is its cgroup
    assert same_but_per_worker(second, first)


async def test_a_spare_killed_before_its_job_is_replaced_by_a_fork(one: OneWorker) -> None:
    first = await report(one.stub)
    spare = await ready_spare(one.provider)
    os.kill(spare, signal.SIGKILL)
    second = await report(one.stub)
    assert second["sid"] != spare
    assert second["env"] == first["env"]


async def test_closing_the_provider_ends_the_spare_and_removes_its_cgroup(
    one: OneWorker,
) -> None:
    await report(one.stub)
    spare = await ready_spare(one.provider)

    async def no_worker() -> bool:
        return not await one.provider.list_workers()

    await eventually(no_worker)  # else the provider's directories stay for its workers
    unified = one.provider.cgroups.unified
    await one.plane.stop(grace=0)
    assert not procfs.running(spare)  # killed and reaped by the launcher before it exited
    if unified is not None:
        assert not unified.exists()  # the spare's directory went, then the provider's
