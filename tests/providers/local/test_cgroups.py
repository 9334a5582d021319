"""Per-worker cgroups: parsing the host's layout, refusing what cannot be enforced, limits
that hold (a job over its memory limit fails), and a worker's leftovers killed."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import grpc
import pytest

from hodei.domain.jobs import JobSpec, Resources, SpecError
from hodei.domain.states import JobState
from hodei.providers.local import LocalProvider
from hodei.providers.local.cgroups import Cgroups, Mount, cgroup_mounts, cgroup_paths
from tests.fixtures.control_plane import MakeControlPlane
from tests.fixtures.stubs import job_stub
from tests.server.helpers import submit, wait_done

HYBRID_MOUNTINFO = """\
26 21 0:22 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
27 26 0:23 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw
30 26 0:26 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
31 26 0:27 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
32 26 0:28 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 21 0:40 / /proc rw - proc proc rw
"""
HYBRID_CGROUP = """\
9:name=systemd:/
4:memory:/process_api/abc
1:cpu:/
0::/
"""


def test_mounts_and_paths_of_a_hybrid_host() -> None:
    assert cgroup_mounts(HYBRID_MOUNTINFO) == [
        Mount(2, "/", "/sys/fs/cgroup/unified"),
        Mount(1, "/", "/sys/fs/cgroup/memory", frozenset({"memory"})),
        Mount(1, "/", "/sys/fs/cgroup/cpu", frozenset({"cpu"})),
        Mount(1, "/", "/sys/fs/cgroup/pids", frozenset({"pids"})),
    ]
    assert cgroup_paths(HYBRID_CGROUP) == {
        "name=systemd": "/",
        "memory": "/process_api/abc",
        "cpu": "/",
        "": "/",
    }


def test_a_unified_only_host() -> None:
    mounts = cgroup_mounts("30 1 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n")
    assert mounts == [Mount(2, "/", "/sys/fs/cgroup")]
    assert cgroup_paths("0::/user.slice/session-1.scope\n") == {"": "/user.slice/session-1.scope"}


def test_limits_without_cgroups_are_refused_not_dropped(tmp_path: Path) -> None:
    local = LocalProvider(max_workers=1, state_dir=tmp_path, cgroups=Cgroups())
    with pytest.raises(SpecError, match="--memory") as memory:
        local.check_spec(JobSpec(command=("true",), resources=Resources(memory_limit="64Mi")))
    assert "--provider kubernetes" in str(memory.value)
    with pytest.raises(SpecError, match="--cpu"):
        local.check_spec(JobSpec(command=("true",), resources=Resources(cpu_limit="500m")))
    local.check_spec(JobSpec(command=("true",)))  # nothing asked, nothing to refuse


def test_an_image_is_refused_with_the_provider_that_runs_images(tmp_path: Path) -> None:
    local = LocalProvider(max_workers=1, state_dir=tmp_path, cgroups=Cgroups())
    with pytest.raises(SpecError, match=r"image 'alpine'.*--provider kubernetes"):
        local.check_spec(JobSpec(command=("true",), image="alpine"))


HOST = Cgroups.detect(f"hodei-test-{os.getpid()}")
HOST.close()


@pytest.mark.slow
@pytest.mark.skipif("memory" not in HOST.enforceable(), reason="no writable memory cgroup")
async def test_a_job_over_its_memory_limit_fails(
    control_plane_factory: MakeControlPlane, tmp_path: Path
) -> None:
    provider = LocalProvider(max_workers=2, state_dir=tmp_path / "workers")
    plane = await control_plane_factory(providers=[provider])
    grab = "a = bytearray(400 << 20); a[::4096] = b'x' * len(a[::4096]); print('allocated')"
    async with grpc.aio.insecure_channel(plane.address) as channel:
        stub = job_stub(channel)
        limited = await submit(
            stub, sys.executable, "-c", grab, resources=Resources(memory_limit="64Mi")
        )
        roomy = await submit(
            stub, sys.executable, "-c", grab, resources=Resources(memory_limit="1Gi")
        )
        over = await wait_done(stub, limited.id)
        within = await wait_done(stub, roomy.id)
    assert (over.state, over.exit_code) == (JobState.FAILED, 137)  # the OOM killer's SIGKILL
    assert (within.state, within.exit_code) == (JobState.SUCCEEDED, 0)


def test_limits_are_written_as_the_kernel_reads_them(tmp_path: Path) -> None:
    v2, memory, cpu = tmp_path / "v2", tmp_path / "memory", tmp_path / "cpu"
    for directory in (v2, memory, cpu):
        directory.mkdir()
    resources = Resources(memory_limit="64Mi", cpu_limit="250m")
    unified = Cgroups(unified=v2, v2_controllers=frozenset({"memory", "cpu"}))
    assert unified.create("w-1", resources) == [str(v2 / "w-1")]
    assert (v2 / "w-1" / "memory.max").read_text() == str(64 * 1024 * 1024)
    assert (v2 / "w-1" / "memory.swap.max").read_text() == "0"
    assert (v2 / "w-1" / "cpu.max").read_text() == "25000 100000"  # a quarter of each period

    hybrid = Cgroups(unified=v2, v1={"memory": memory, "cpu": cpu})
    assert hybrid.create("w-2", resources) == [
        str(v2 / "w-2"),
        str(memory / "w-2"),
        str(cpu / "w-2"),
    ]
    assert not (v2 / "w-2" / "memory.max").exists()  # no controller there: v1 holds the limit
    assert (memory / "w-2" / "memory.limit_in_bytes").read_text() == str(64 * 1024 * 1024)
    assert (memory / "w-2" / "memory.memsw.limit_in_bytes").read_text() == str(64 * 1024 * 1024)
    assert (cpu / "w-2" / "cpu.cfs_quota_us").read_text() == "25000"
    assert hybrid.describe().endswith(f"memory: cgroup v1 {memory}; cpu: cgroup v1 {cpu}")
    # Without limits a worker still gets its v2 cgroup (containment), nothing else.
    assert hybrid.create("w-3", Resources()) == [str(v2 / "w-3")]


def test_an_ended_workers_cgroup_serves_the_next_only_as_good_as_new(tmp_path: Path) -> None:
    v2, memory = tmp_path / "v2", tmp_path / "memory"
    v2.mkdir()
    memory.mkdir()
    host = Cgroups(unified=v2, v2_controllers=frozenset({"memory"}), v1={})

    def ended(name: str, resources: Resources | None = None, procs: str = "") -> Path:
        host.create(name, resources or Resources())
        (v2 / name / "cgroup.procs").write_text(procs)  # the kernel's file, as it reads
        return v2 / name

    ended("plain")
    assert host.reusable("plain")
    ended("busy", procs="4242\n")  # something left in it (not killed yet)
    assert not host.reusable("busy")
    ended("limited", Resources(memory_limit="64Mi"))  # a limit would hold the next job
    assert not host.reusable("limited")
    (ended("oom") / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    assert not host.reusable("oom")  # the counter would be read as the next job's OOM kill
    assert not host.reusable("missing")

    hybrid = Cgroups(unified=v2, v1={"memory": memory})
    hybrid.create("v1-limited", Resources(memory_limit="64Mi"))
    (v2 / "v1-limited" / "cgroup.procs").write_text("")
    assert not hybrid.reusable("v1-limited")  # its v1 directory carries the limit
