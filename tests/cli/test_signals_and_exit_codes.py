"""Stopping ``hodei run`` by signal, and the exit-code table, through the real CLI process.

Every stop signal cancels the job and ends the command with 128+N; in embedded mode
nothing the command started (control plane, worker, job) is alive once it has exited.
``jobs wait`` and ``jobs logs -f`` exit as ``hodei run`` would have.
"""

from __future__ import annotations

import json
import signal
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.fixtures.cli import (
    HODEI,
    Server,
    clean_env,
    hodei,
    marked_processes,
    wait_for,
    worker_processes,
)
from tests.fixtures.waiting import free_port

pytestmark = pytest.mark.slow

STOPS = [signal.SIGINT, signal.SIGTERM, signal.SIGHUP]
MARK = "HODEI_TEST_MARK"


def started_run(env: dict[str, str]) -> subprocess.Popen[bytes]:
    """``hodei run`` of a long job, returned once the job has printed its first line."""
    run = subprocess.Popen(
        [*HODEI, "run", "--", "sh", "-c", "echo started; sleep 60"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert run.stdout is not None
    assert run.stdout.readline() == b"started\n"
    return run


@pytest.mark.parametrize("signum", STOPS, ids=lambda s: signal.Signals(s).name)
def test_embedded_run_stopped_by_signal_exits_128_plus_n_leaving_nothing(
    signum: signal.Signals, tmp_path: Path
) -> None:
    mark = uuid.uuid4().hex
    env = clean_env(**{MARK: mark, "TMPDIR": str(tmp_path)})
    with started_run(env) as run:
        assert len(marked_processes(MARK, mark)) >= 3  # the command, its worker, the job
        run.send_signal(signum)
        _, err = run.communicate(timeout=30)
        assert run.returncode == 128 + signum, err
    assert f"{signum.name} received; cancelling job".encode() in err
    assert marked_processes(MARK, mark) == []  # at once: nothing outlives the command
    wait_for(lambda: not list(tmp_path.iterdir()), timeout=15, what="temporary files removed")


@pytest.mark.parametrize("signum", STOPS, ids=lambda s: signal.Signals(s).name)
def test_run_against_a_server_stopped_by_signal_cancels_the_job(
    signum: signal.Signals, tmp_path: Path, servers: list[Server]
) -> None:
    server = Server(tmp_path)
    servers.append(server)
    env = server.client_env
    with started_run(env) as run:
        run.send_signal(signum)
        run.communicate(timeout=30)
        assert run.returncode == 128 + signum
    jobs = json.loads(hodei("jobs", "list", "-o", "json", env=env).stdout)
    assert [j["state"] for j in jobs] == ["CANCELLED"]
    wait_for(lambda: worker_processes(server) == [], what="the worker to exit")


def test_the_exit_code_table_through_the_cli(tmp_path: Path, servers: list[Server]) -> None:
    server = Server(tmp_path)
    servers.append(server)
    env = server.client_env
    not_executable = tmp_path / "data.txt"
    not_executable.write_text("not a program\n")
    cases = {
        "own code": (["--", "sh", "-c", "exit 3"], 3),
        "not found": (["--", "no-such-command-anywhere"], 127),
        "cannot execute": (["--", str(not_executable)], 126),
        "timed out": (["--timeout", "0.5", "--", "sleep", "30"], 124),
        "killed by a signal": (["--", "sh", "-c", "kill -TERM $$"], 143),
        "unknown provider": (["--provider", "nowhere", "--", "true"], 125),
        "bad flag value": (["--memory", "lots", "--", "true"], 125),
        "unknown flag": (["--no-such-flag", "--", "true"], 125),
    }
    for name, (argv, code) in cases.items():
        result = hodei("run", *argv, env=env)
        assert result.returncode == code, (name, result.stderr)
        if code == 125:
            assert result.stderr.count(b"\n") <= 2 and b"Traceback" not in result.stderr, name

    unreachable = hodei("run", "--", "true", env=clean_env(HODEI_SERVER=f"127.0.0.1:{free_port()}"))
    assert unreachable.returncode == 125 and b"HODEI_SERVER" in unreachable.stderr
    scheme = hodei("jobs", "list", env=clean_env(HODEI_SERVER="http://127.0.0.1:50051"))
    assert scheme.returncode == 125 and b"give HOST:PORT, e.g. 127.0.0.1:50051" in scheme.stderr


def detach(env: dict[str, str], *argv: str) -> str:
    result = hodei("run", "--detach", *argv, env=env)
    assert result.returncode == 0, result.stderr
    return result.stdout.decode().strip()


def test_jobs_wait_and_logs_follow_exit_as_run_would(tmp_path: Path, servers: list[Server]) -> None:
    server = Server(tmp_path)
    servers.append(server)
    env = server.client_env
    failing = detach(env, "--", "sh", "-c", "sleep 1; echo out; echo err >&2; exit 4")
    timing_out = detach(env, "--timeout", "1", "--", "sleep", "30")
    fine = detach(env, "--", "true")

    logs = hodei("jobs", "logs", "-f", failing, env=env)
    assert (logs.returncode, logs.stdout, logs.stderr) == (4, b"out\n", b"err\n")

    waited = hodei("jobs", "wait", fine, failing, timing_out, env=env)
    assert waited.returncode == 124, waited.stderr
    assert waited.stdout.decode().splitlines() == [
        f"{fine} SUCCEEDED 0",
        f"{failing} FAILED 4",
        f"{timing_out} TIMED_OUT 124",
    ]
    assert hodei("jobs", "wait", timing_out, fine, env=env).returncode == 0

    cancelled = detach(env, "--", "sleep", "60")
    assert hodei("jobs", "cancel", cancelled, env=env).returncode == 0
    assert hodei("jobs", "wait", cancelled, env=env).returncode == 130
    assert hodei("jobs", "logs", "-f", cancelled, env=env).returncode == 130
    assert hodei("jobs", "logs", cancelled, env=env).returncode == 0  # not following: 0

    missing = hodei("jobs", "wait", fine, "j-nothere", env=env)
    assert missing.returncode == 125 and b"j-nothere" in missing.stderr


def test_a_job_killed_by_the_kernel_keeps_the_signal_code(tmp_path: Path) -> None:
    """A job that dies of SIGKILL (what the OOM killer sends) exits 137 through hodei run."""
    result = hodei("run", "--", "sh", "-c", "kill -KILL $$", env=clean_env())
    assert result.returncode == 137, result.stderr


def test_embedded_run_killed_outright_leaves_nothing_behind(tmp_path: Path) -> None:
    """SIGKILL gives the command no chance to cancel: its forked launcher sees the
    command's end of their socket close, kills the worker and the job, and removes the
    command's scratch directory."""
    mark = uuid.uuid4().hex
    env = clean_env(**{MARK: mark, "TMPDIR": str(tmp_path)})
    with started_run(env) as run:
        assert len(marked_processes(MARK, mark)) >= 3  # the command, its worker, the job
        assert [p.name for p in tmp_path.glob("hodei-run-*")] != []
        run.kill()
        run.communicate(timeout=30)
        assert run.returncode == -signal.SIGKILL
    wait_for(lambda: marked_processes(MARK, mark) == [], timeout=15, what="nothing left")
    # The scratch directory held all the command made there (its store, the agents' socket).
    wait_for(lambda: not list(tmp_path.iterdir()), timeout=15, what="scratch removed")
