"""``hodei`` as a user runs it: real processes for the CLI, the server and the workers."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import urllib.request
from pathlib import Path

import pytest

from tests.fixtures.cli import (
    HODEI,
    Server,
    clean_env,
    hodei,
    wait_for,
    worker_processes,
)

pytestmark = pytest.mark.slow


def show(job_id: str, env: dict[str, str]) -> dict[str, object]:
    result = hodei("jobs", "show", job_id, "-o", "json", env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_readme_first_command_with_no_server() -> None:
    result = hodei("run", "--", "sh", "-c", "echo out; echo err >&2; exit 3", env=clean_env())
    assert (result.returncode, result.stdout, result.stderr) == (3, b"out\n", b"err\n")


def test_big_binary_output_arrives_intact(tmp_path: Path) -> None:
    data = tmp_path / "data.bin"
    block = os.urandom(1 << 20)
    data.write_bytes(block * 100)  # 100 MiB, every byte value, no line structure
    result = hodei("run", "--", "cat", str(data), env=clean_env(), timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert len(result.stdout) == 100 << 20
    assert result.stdout == data.read_bytes()


def test_server_on_port_0_reports_the_ports_it_bound(tmp_path: Path, servers: list[Server]) -> None:
    server = Server(tmp_path)  # HODEI_GRPC_ADDRESS=127.0.0.1:0, ports from --ports-file
    servers.append(server)
    assert server.port > 0 and server.http_port > 0
    ready = f"(port {server.port}), HTTP port {server.http_port}"
    assert ready in server.log.read_text()
    with urllib.request.urlopen(f"http://127.0.0.1:{server.http_port}/healthz") as reply:
        assert reply.status == 200
    assert hodei("jobs", "list", env=server.client_env).returncode == 0
    assert server.stop() == 0


def test_server_mode_commands(tmp_path: Path, servers: list[Server]) -> None:
    server = Server(tmp_path)
    servers.append(server)
    env = server.client_env

    run = hodei(
        "run", "--label", "team=ml", "--", "sh", "-c", "echo out; echo err >&2; exit 3", env=env
    )
    assert (run.returncode, run.stdout, run.stderr) == (3, b"out\n", b"err\n")

    detached = hodei("run", "--detach", "--", "sh", "-c", "printf 'x\\377'", env=env)
    job_id = detached.stdout.decode().strip()
    assert detached.returncode == 0 and job_id.startswith("j-")
    logs = hodei("jobs", "logs", "-f", job_id, env=env)
    assert logs.stdout == b"x\xff"
    wait_for(lambda: show(job_id, env)["state"] == "SUCCEEDED", what="job to succeed")
    job = show(job_id, env)
    assert job["exit_code"] == 0 and job["finished_at"]

    listed = hodei("jobs", "list", "-o", "json", env=env)
    assert listed.returncode == 0, listed.stderr
    assert {job_id} <= {j["id"] for j in json.loads(listed.stdout)}
    table = hodei("jobs", "list", env=env)
    assert b"STATE" in table.stdout and job_id.encode() in table.stdout
    workers = hodei("workers", "list", "-o", "json", env=env)
    assert workers.returncode == 0 and isinstance(json.loads(workers.stdout), list)

    data = tmp_path / "data.bin"
    data.write_bytes(os.urandom(10 << 20))
    big = hodei("run", "--detach", "--", "sh", "-c", f"cat {data}; cat {data} >&2", env=env)
    big_id = big.stdout.decode().strip()
    stored = hodei("jobs", "logs", "-f", big_id, env=env)
    assert (stored.stdout, stored.stderr) == (data.read_bytes(), data.read_bytes())

    timed_out = hodei("run", "--timeout", "0.5", "--", "sleep", "30", env=env)
    assert timed_out.returncode == 124

    missing = hodei("jobs", "show", "j-nothere", env=env)
    assert missing.returncode == 125 and b"j-nothere" in missing.stderr

    assert server.stop() == 0
    wait_for(lambda: worker_processes(server) == [], what="workers to exit")


def test_unreachable_server_and_bad_settings() -> None:
    result = hodei("run", "--", "true", env=clean_env(HODEI_SERVER="127.0.0.1:1"))
    assert result.returncode == 125 and b"HODEI_SERVER" in result.stderr
    result = hodei("server", env=clean_env(HODEI_K8S_ENABLED="maybe"))
    assert result.returncode == 2 and b"HODEI_K8S_ENABLED" in result.stderr
    result = hodei("server", env=clean_env(HODEI_LOCAL_ENABLED="0"))
    assert result.returncode == 2 and b"no provider is enabled" in result.stderr
    result = hodei("worker", env=clean_env())
    assert result.returncode == 2 and b"HODEI_SERVER_ADDRESS" in result.stderr


def test_server_killed_mid_run_and_restarted(tmp_path: Path, servers: list[Server]) -> None:
    first = Server(tmp_path)
    port = first.port  # the restarted server listens where the workers dial
    servers.append(first)
    env = first.client_env
    # The jobs run until the test lets them finish, so "mid run" holds however slow the
    # machine is: they cannot end before the server is killed.
    flag = tmp_path / "finish"
    job_ids = []
    for i in range(3):
        script = f"while [ ! -e {flag} ]; do sleep 0.05; done; echo done-{i}"
        result = hodei("run", "--detach", "--", "sh", "-c", script, env=env)
        job_ids.append(result.stdout.decode().strip())
    wait_for(
        lambda: all(show(j, env)["state"] == "RUNNING" for j in job_ids),
        what="jobs to run",
    )
    assert len(worker_processes(first)) == 3
    first.process.kill()
    first.process.wait()

    second = Server(tmp_path, port)
    servers.append(second)
    flag.touch()
    wait_for(
        lambda: all(
            show(j, env)["state"] not in ("QUEUED", "STARTING", "RUNNING") for j in job_ids
        ),
        timeout=60,
        what="jobs to finish after the restart",
    )
    for i, job_id in enumerate(job_ids):
        job = show(job_id, env)
        assert (job["state"], job["exit_code"]) == ("SUCCEEDED", 0), job
        assert hodei("jobs", "logs", job_id, env=env).stdout == f"done-{i}\n".encode()
    wait_for(lambda: worker_processes(second) == [], what="workers to exit")
    assert second.stop() == 0


def test_run_stays_attached_across_a_server_restart(tmp_path: Path, servers: list[Server]) -> None:
    first = Server(tmp_path)
    port = first.port
    servers.append(first)
    run = subprocess.Popen(
        [*HODEI, "run", "--", "sh", "-c", "echo before; sleep 2; echo after"],
        env=first.client_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert run.stdout is not None
    assert run.stdout.readline() == b"before\n"
    first.process.kill()
    first.process.wait()
    servers.append(Server(tmp_path, port))
    out, err = run.communicate(timeout=60)
    assert (run.returncode, out) == (0, b"after\n"), err
    lost, back = err.decode().splitlines()  # said on stderr although it is not a terminal
    assert lost.startswith("hodei: lost the control plane (cannot reach")
    assert back == f"hodei: control plane at 127.0.0.1:{port} is back; carrying on"


def test_a_reader_that_leaves_cancels_an_endless_job() -> None:
    command = shlex.join([*HODEI, "run", "--", "yes"])
    result = subprocess.run(
        ["bash", "-c", f'{command} | head -c 4; echo " ${{PIPESTATUS[0]}}"'],
        env=clean_env(),
        capture_output=True,
        timeout=60,
    )
    assert result.stdout == b"y\ny\n 141\n", result.stderr
