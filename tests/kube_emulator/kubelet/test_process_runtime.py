"""The process runtime: exit codes, env, output, memory limit and signals, with real processes."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kube_emulator.kubelet.runtime.base import ContainerLaunch, FailedStart, PodLaunch
from kube_emulator.kubelet.runtime.process import ProcessContainer, ProcessRuntime

pytestmark = pytest.mark.slow


class Output:
    def __init__(self) -> None:
        self.chunks: list[tuple[str, bytes]] = []
        self.changed = asyncio.Event()

    def __call__(self, container: str, data: bytes) -> None:
        self.chunks.append((container, data))
        self.changed.set()

    async def wait_for(self, text: str) -> None:
        while text not in self.text():
            self.changed.clear()
            await asyncio.wait_for(self.changed.wait(), 10)

    def text(self, container: str = "main") -> str:
        return b"".join(d for c, d in self.chunks if c == container).decode()


@pytest.fixture
async def runtime() -> AsyncIterator[ProcessRuntime]:
    runtime = ProcessRuntime(memory_interval=0.05)
    yield runtime
    await runtime.close()


def launch(tmp_path: Path, *argv: str, memory: int | None = None, **env: str) -> PodLaunch:
    container = ContainerLaunch(
        name="main",
        image="python",
        argv=argv,
        env={"PATH": "/usr/bin:/bin", **env},
        working_dir=tmp_path,
        memory_limit=memory,
    )
    return PodLaunch("ns", "p", "uid-1", {}, (container,), tmp_path)


def python(code: str) -> tuple[str, ...]:
    return (sys.executable, "-c", code)


async def run_one(runtime: ProcessRuntime, pod: PodLaunch, output: Output) -> ProcessContainer:
    sandbox = await runtime.start_pod(pod, output)
    container = sandbox.containers["main"]
    assert isinstance(container, ProcessContainer)
    return container


async def test_exit_code_env_cwd_and_output(runtime: ProcessRuntime, tmp_path: Path) -> None:
    output = Output()
    code = (
        "import os, sys; print(os.environ['GREETING'], os.getcwd(), flush=True); "
        "print('oops', file=sys.stderr); sys.exit(3)"
    )
    container = await run_one(runtime, launch(tmp_path, *python(code), GREETING="hi"), output)
    result = await container.wait()
    assert (result.exit_code, result.reason) == (3, "Error")
    assert output.text() == f"hi {tmp_path}\noops\n"
    assert container.container_id.startswith("containerd://")


async def test_success_is_completed(runtime: ProcessRuntime, tmp_path: Path) -> None:
    container = await run_one(runtime, launch(tmp_path, "true"), Output())
    result = await container.wait()
    assert (result.exit_code, result.reason) == (0, "Completed")


async def test_missing_executable_is_a_start_error(runtime: ProcessRuntime, tmp_path: Path) -> None:
    sandbox = await runtime.start_pod(launch(tmp_path, "no-such-command-xyz"), Output())
    failed = sandbox.containers["main"]
    assert isinstance(failed, FailedStart)
    assert (failed.exit.exit_code, failed.exit.reason) == (128, "StartError")
    assert 'exec: "no-such-command-xyz": executable file not found in $PATH' in failed.exit.message


async def test_memory_over_the_limit_is_oom_killed(runtime: ProcessRuntime, tmp_path: Path) -> None:
    hog = (
        "import time; b = bytearray(200 * 2**20); b[::4096] = b'x' * len(b[::4096]); time.sleep(30)"
    )
    pod = launch(tmp_path, *python(hog), memory=64 * 2**20)
    container = await run_one(runtime, pod, Output())
    result = await asyncio.wait_for(container.wait(), 10)
    assert (result.exit_code, result.reason) == (137, "OOMKilled")


async def test_memory_of_children_in_other_groups_counts(
    runtime: ProcessRuntime, tmp_path: Path
) -> None:
    child = (
        "import time; b = bytearray(200 * 2**20); b[::4096] = b'x' * len(b[::4096]); time.sleep(30)"
    )
    parent = (
        "import subprocess, sys; "
        f"subprocess.run([sys.executable, '-c', {child!r}], process_group=0)"
    )
    container = await run_one(
        runtime, launch(tmp_path, *python(parent), memory=64 * 2**20), Output()
    )
    result = await asyncio.wait_for(container.wait(), 10)
    assert result.reason == "OOMKilled"


async def test_stop_sends_sigterm_then_sigkill(runtime: ProcessRuntime, tmp_path: Path) -> None:
    output = Output()
    stubborn = (
        "import os, signal, sys, time\n"
        "signal.signal(signal.SIGTERM, lambda *_: os.write(1, b'got SIGTERM\\n'))\n"
        "print('ready', flush=True)\n"
        "while True: time.sleep(0.05)\n"
    )
    sandbox = await runtime.start_pod(launch(tmp_path, *python(stubborn)), output)
    container = sandbox.containers["main"]
    assert isinstance(container, ProcessContainer)
    await output.wait_for("ready")
    await sandbox.stop(grace_seconds=0.3)
    result = await container.wait()
    assert (result.exit_code, result.reason) == (137, "Error")
    assert "got SIGTERM" in output.text()


async def test_sigterm_ends_a_cooperative_process_within_the_grace(
    runtime: ProcessRuntime, tmp_path: Path
) -> None:
    sandbox = await runtime.start_pod(launch(tmp_path, "sleep", "30"), Output())
    container = sandbox.containers["main"]
    assert isinstance(container, ProcessContainer)
    await asyncio.wait_for(sandbox.stop(grace_seconds=30), 5)
    result = await container.wait()
    assert result.exit_code == 143  # 128 + SIGTERM


async def test_background_children_die_with_the_main_process(
    runtime: ProcessRuntime, tmp_path: Path
) -> None:
    pidfile = tmp_path / "child.pid"
    script = f"sleep 30 & echo $! > {pidfile}; exit 0"
    container = await run_one(runtime, launch(tmp_path, "sh", "-c", script), Output())
    result = await asyncio.wait_for(container.wait(), 5)
    assert result.exit_code == 0
    child = int(pidfile.read_text())
    # SIGKILL was sent before wait() returned; the kernel may take a moment to finish it.
    for _ in range(200):
        if _state(child) in ("gone", "Z"):
            break
        await asyncio.sleep(0.01)
    assert _state(child) in ("gone", "Z")


def _state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0]
    except OSError:
        return "gone"
