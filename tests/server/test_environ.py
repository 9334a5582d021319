"""A local job cannot read the control plane's secrets, not even from /proc/PID/environ."""

from __future__ import annotations

import secrets
import subprocess
import sys
from pathlib import Path

import grpc
import pytest

from hodei.api.v1 import jobs_pb2, types_pb2
from tests.fixtures.cli import Server
from tests.fixtures.stubs import job_stub
from tests.server.helpers import submit

WIPER = """
import os, subprocess, sys
from hodei.server.environ import wipe_from_environ
print(wipe_from_environ(), flush=True)
child = subprocess.run(["sh", "-c", 'echo "[$HODEI_API_TOKEN]"'], capture_output=True, text=True)
print(child.stdout.strip(), "HODEI_API_TOKEN" in os.environ, flush=True)
sys.stdin.read()
"""


def test_wiped_values_are_gone_from_proc_environ_and_the_rest_stays() -> None:
    token = secrets.token_hex(16)
    env = {"PATH": "/usr/bin:/bin", "HODEI_API_TOKEN": token, "KEPT": "visible"}
    with subprocess.Popen(
        [sys.executable, "-c", WIPER],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as child:
        assert child.stdout is not None and child.stdin is not None
        assert child.stdout.readline().strip() == "['HODEI_API_TOKEN']"
        # A child started with the inherited environment has no token; this process's own
        # settings code still reads it from os.environ.
        assert child.stdout.readline().strip() == "[] True"
        seen = Path(f"/proc/{child.pid}/environ").read_bytes().split(b"\0")
        child.stdin.close()
    assert token.encode() not in b"\0".join(seen)
    assert b"KEPT=visible" in seen


@pytest.mark.slow
async def test_a_local_job_finds_the_servers_token_nowhere(tmp_path: Path) -> None:
    token = secrets.token_hex(16)
    server = Server(tmp_path, HODEI_API_TOKEN=token)
    # Every environment on the machine this job can read: the server's, the launcher's,
    # its worker's, its own.
    scan = "cat /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n' | grep -c \"$0\"; env"
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = job_stub(channel)
            auth = (("authorization", f"Bearer {token}"),)
            job = await submit(stub, "sh", "-c", scan, token, metadata=auth)
            follow = jobs_pb2.StreamLogsRequest(job_id=job.id, follow=True)
            chunks = [c async for c in stub.StreamLogs(follow, metadata=auth)]
            done = await stub.GetJob(jobs_pb2.GetJobRequest(id=job.id), metadata=auth)
    finally:
        assert server.stop() == 0
    text = b"".join(c.data for c in chunks if c.stream == types_pb2.STDOUT).decode()
    assert done.exit_code == 0  # env, the last command, succeeded
    count, _, env = text.partition("\n")
    assert count == "0"
    assert [line for line in env.splitlines() if line.startswith("HODEI_")] == [
        f"HODEI_JOB_ID={job.id}"
    ]
