"""The agent running a job through the launcher, as in a pod whose job names its own image.

The launcher (busybox sh + launch.sh) runs on the host as the job container's process
would, in a session of its own; the "image" is a directory on PATH. The agent talks to it
through the fifos only, as across containers.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from hodei.api.v1 import types_pb2, worker_pb2
from hodei.config import WorkerSettings
from hodei.worker.agent import EXIT_DELIVERED, EXIT_NO_LAUNCHER, Agent
from hodei.worker.launched import LauncherLink, job_script
from tests.fixtures.launcher import lay_out, running_launcher
from tests.worker.fake_control_plane import (
    JOB_ID,
    TOKEN,
    WORKER_ID,
    Record,
    Script,
    fake_control_plane,
)
from tests.worker.test_agent import OPTIONS, alive

STDOUT, STDERR = types_pb2.STDOUT, types_pb2.STDERR


@dataclass
class Pod:
    directory: Path
    image_bin: Path
    launcher: asyncio.subprocess.Process


@pytest.fixture
async def pod(tmp_path: Path) -> AsyncIterator[Pod]:
    directory = lay_out(tmp_path / "hodei")
    image_bin = tmp_path / "image-bin"
    image_bin.mkdir()
    workdir = tmp_path / "workdir"
    workdir.mkdir()
    env = {"PATH": f"{image_bin}:/usr/bin:/bin", "IMAGE_VAR": "from-image"}
    async with running_launcher(directory, env=env, cwd=workdir) as launcher:
        yield Pod(directory, image_bin, launcher)


async def run(
    pod: Pod,
    spec: types_pb2.JobSpec,
    job_input: Sequence[types_pb2.JobInput] = (),
    **script: bool,
) -> tuple[int, Record]:
    async with fake_control_plane(Script(spec, **script), job_input) as (service, address):
        settings = WorkerSettings(address, WORKER_ID, TOKEN, launcher_dir=str(pod.directory))
        code = await Agent(settings, options=OPTIONS).run()
    await asyncio.wait_for(pod.launcher.wait(), 10)
    return code, service.record


def result(record: Record) -> worker_pb2.JobResult:
    assert record.acked_result is not None
    return record.acked_result


def command(*argv: str, timeout: float = 0.0, **env: str) -> types_pb2.JobSpec:
    return types_pb2.JobSpec(command=list(argv), env=env, timeout_seconds=timeout)


async def test_output_apart_exit_code_image_env_and_job_env(pod: Pod) -> None:
    script = 'echo "$IMAGE_VAR $JOB_VAR $HODEI_JOB_ID"; echo "$1|$2" >&2; pwd; exit 3'
    spec = command("sh", "-c", script, "sh", "a b", "it's", JOB_VAR="job value")
    code, record = await run(pod, spec)
    assert code == EXIT_DELIVERED
    assert result(record).exit_code == 3
    lines = record.output(STDOUT).decode().splitlines()
    assert lines[0].startswith("from-image job value j-")
    assert lines[1].endswith("/workdir")  # the image's WORKDIR is the command's cwd
    assert record.output(STDERR) == b"a b|it's\n"
    assert pod.launcher.returncode == 3  # the container ends with the job's code


async def test_the_job_env_goes_on_top_of_the_containers_own(pod: Pod) -> None:
    # The container's env (the image's ENV, a pod profile's env, --secret-env values) stays;
    # a name the job sets itself takes the job's value.
    spec = command("sh", "-c", 'echo "$IMAGE_VAR|$PATH"', IMAGE_VAR="from the job")
    _, record = await run(pod, spec)
    assert record.output(STDOUT) == f"from the job|{pod.image_bin}:/usr/bin:/bin\n".encode()


async def test_the_images_program_runs_not_busyboxs_applet(pod: Pod) -> None:
    ls = pod.image_bin / "ls"
    ls.write_text('#!/bin/sh\necho "image ls $0 $*"\n')
    ls.chmod(0o755)
    _, record = await run(pod, command("ls", "-l"))
    assert record.output(STDOUT) == f"image ls {ls} -l\n".encode()


async def test_variables_a_shell_could_not_export_and_path_from_the_job(pod: Pod) -> None:
    other = pod.image_bin.parent / "other-bin"
    other.mkdir()
    (other / "show-env").symlink_to("/usr/bin/env")  # a shell would drop such a name
    env = {"weird.name": "x=y z", "PATH": f"{other}:/usr/bin:/bin"}
    _, record = await run(pod, types_pb2.JobSpec(command=["show-env"], env=env))
    assert result(record).exit_code == 0
    lines = record.output(STDOUT).decode().splitlines()
    assert "weird.name=x=y z" in lines
    assert f"PATH={other}:/usr/bin:/bin" in lines
    assert "IMAGE_VAR=from-image" in lines


async def test_missing_command_is_named_with_127(pod: Pod) -> None:
    _, record = await run(pod, command("no-such-tool", "x"))
    outcome = result(record)
    assert outcome.exit_code == 127
    assert outcome.error.startswith("no-such-tool: command not found in the job's image")
    assert pod.launcher.returncode == 127


async def test_a_file_the_user_may_not_execute_is_126_naming_the_uid(pod: Pod) -> None:
    locked = pod.image_bin / "locked"
    locked.write_text("#!/bin/sh\necho never\n")
    locked.chmod(0o600)
    _, record = await run(pod, command("locked"))
    outcome = result(record)
    assert outcome.exit_code == 126
    assert outcome.error.startswith(f"{locked}: permission denied for uid {os.getuid()}")
    assert "restricted" in outcome.error


async def test_signal_death_is_128_plus_n(pod: Pod) -> None:
    _, record = await run(pod, command("sh", "-c", "kill -TERM $$"))
    assert result(record).exit_code == 128 + signal.SIGTERM
    assert not result(record).oom_killed


async def test_timeout_kills_the_whole_tree_even_a_detached_child(pod: Pod) -> None:
    # The daemon leaves its parent (double fork) but not the launcher's session.
    script = "(sleep 60 & echo $! > daemon.pid); sleep 60 & echo $!; wait"
    code, record = await run(pod, command("sh", "-c", script, timeout=0.5))
    assert code == EXIT_DELIVERED
    outcome = result(record)
    assert outcome.timed_out and not outcome.cancelled
    child = int(record.output(STDOUT))
    daemon = int((pod.directory.parent / "workdir" / "daemon.pid").read_text())
    assert not alive(child)
    assert not alive(daemon)


async def test_cancel_kills_the_tree_and_reports_cancelled(pod: Pod) -> None:
    spec = command("sh", "-c", "sleep 60 & echo $!; wait")
    _, record = await run(pod, spec, cancel_after_output=True)
    outcome = result(record)
    assert outcome.cancelled
    assert outcome.exit_code == 128 + signal.SIGTERM
    assert not alive(int(record.output(STDOUT)))


async def test_a_launcher_killed_from_outside_ends_the_job_with_137(pod: Pod) -> None:
    spec = command("sh", "-c", f"kill -KILL {pod.launcher.pid}; sleep 60")
    _, record = await run(pod, spec)
    assert result(record).exit_code == 137


async def test_launcher_leaves_when_the_agent_ends_without_a_job(pod: Pod) -> None:
    link = await LauncherLink.open(pod.directory)
    await asyncio.wait_for(link.ready.wait(), 10)
    assert link.launcher_pid == pod.launcher.pid
    await link.close()  # what the agent's exit does to its ends: ctl reads end-of-file
    assert await asyncio.wait_for(pod.launcher.wait(), 10) == 0


async def test_agent_without_launcher_fifos_exits_6(tmp_path: Path) -> None:
    settings = WorkerSettings("127.0.0.1:1", WORKER_ID, TOKEN, launcher_dir=str(tmp_path))
    assert await Agent(settings, options=OPTIONS).run() == EXIT_NO_LAUNCHER


def test_job_script_quotes_every_word() -> None:
    text = job_script(["printf", "%s\n", "it's $HOME"], {"A": "1 2", "b.c": "'"})
    assert text == (
        "hodei_run() { \"$bb\" env 'A=1 2' 'b.c='\"'\"'' \"$@\"; }\n"
        "set -- printf '%s\n' 'it'\"'\"'s $HOME'\n"
    )


@pytest.mark.parametrize("name", ["", "A=B"])
def test_job_script_refuses_names_the_environment_cannot_carry(name: str) -> None:
    with pytest.raises(ValueError, match="env: "):
        job_script(["true"], {name: "x"})


def test_hide_from_job_makes_the_process_non_dumpable() -> None:
    code = (
        "import ctypes; from hodei.worker.launched import hide_from_job\n"
        "libc = ctypes.CDLL(None)\n"
        "before = libc.prctl(3, 0, 0, 0, 0)  # PR_GET_DUMPABLE\n"
        "print(before, hide_from_job(), libc.prctl(3, 0, 0, 0, 0))"
    )
    probe = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert probe.stdout.split() == ["1", "True", "0"], probe.stderr


async def test_what_the_launcher_says_stays_out_of_the_jobs_output(pod: Pod) -> None:
    # A shell reports a child killed by a signal ("Terminated"); not in the job's stderr.
    _, record = await run(pod, command("sh", "-c", "echo err >&2; sleep 60", timeout=0.5))
    assert result(record).timed_out
    assert record.output(STDERR) == b"err\n"


async def test_stdin_from_the_client_reaches_the_command_with_its_end(pod: Pod) -> None:
    spec = types_pb2.JobSpec(command=["sh", "-c", "cat; echo end"], stdin=True)
    job_input = [
        types_pb2.JobInput(job_id=JOB_ID, data=b"first\n"),
        types_pb2.JobInput(job_id=JOB_ID, data=b"second\n"),
        types_pb2.JobInput(job_id=JOB_ID, eof=True),
    ]
    _, record = await run(pod, spec, job_input)
    assert record.output(STDOUT) == b"first\nsecond\nend\n"
    assert result(record).exit_code == 0


async def test_without_stdin_the_command_reads_nothing(pod: Pod) -> None:
    _, record = await run(pod, command("sh", "-c", "cat; echo end"))
    assert record.output(STDOUT) == b"end\n"


async def test_workdir_is_entered_before_the_command_is_looked_up(pod: Pod) -> None:
    elsewhere = pod.image_bin.parent / "elsewhere"
    elsewhere.mkdir()
    spec = types_pb2.JobSpec(command=["sh", "-c", "pwd"], workdir=str(elsewhere))
    _, record = await run(pod, spec)
    assert record.output(STDOUT) == f"{elsewhere}\n".encode()


async def test_a_missing_workdir_fails_the_start_naming_it(pod: Pod) -> None:
    spec = types_pb2.JobSpec(command=["true"], workdir="/no/such/dir")
    _, record = await run(pod, spec)
    outcome = result(record)
    assert outcome.exit_code == 125
    assert outcome.error.startswith("working directory /no/such/dir (--workdir)")
