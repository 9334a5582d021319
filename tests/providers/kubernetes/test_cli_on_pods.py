"""The CLI's view of jobs on worker pods: why a Pending pod's job waits, shown by
``jobs show``/``list``/``-o json`` while it waits; a terminal and stdin in a worker pod."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from .conftest import Make

pytestmark = pytest.mark.slow


async def test_the_waiting_reason_of_a_pending_pod_is_part_of_the_job(
    cluster_factory: Make,
) -> None:
    cluster = await cluster_factory(HODEI_K8S_PENDING_TIMEOUT="60")
    job_id = (await cluster.hodei("run", "--detach", "--cpu", "64", "--", "true")).strip()
    deadline = time.monotonic() + 30
    shown: dict[str, object] = {}
    while "Unschedulable" not in str(shown.get("waiting_reason")):
        assert time.monotonic() < deadline, shown
        shown = json.loads(await cluster.hodei("jobs", "show", job_id, "-o", "json"))
    assert shown["state"] in ("QUEUED", "STARTING")
    assert "Insufficient cpu" in str(shown["waiting_reason"])
    details = await cluster.hodei("jobs", "show", job_id)
    assert any(
        line.startswith("Waiting:") and "Unschedulable" in line for line in details.splitlines()
    )
    [row] = (await cluster.hodei("jobs", "list")).splitlines()[1:]
    assert row.split()[:3] == [job_id, shown["state"], "-"] and "Unschedulable:" in row
    listed = json.loads(await cluster.hodei("jobs", "list", "-o", "json"))
    assert "Insufficient cpu" in listed[0]["waiting_reason"]
    await cluster.hodei("jobs", "cancel", job_id)
    assert await cluster.no_pods_left() == []


async def test_a_terminal_and_stdin_reach_the_job_in_its_worker_pod(cluster_factory: Make) -> None:
    cluster = await cluster_factory()
    code, out, err = await cluster.run(
        "-t", "--", "sh", "-c", "test -t 0 && test -t 1 && echo tty; stty size"
    )
    assert (code, out) == (0, "tty\r\n24 80\r\n"), err
    proc = await asyncio.create_subprocess_exec(
        *cluster.command("-i", "--", "sh", "-c", "tr a-z A-Z; echo done"),
        env=cluster.env(),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    piped, err_bytes = await asyncio.wait_for(proc.communicate(b"hello\npod\n"), 60)
    assert (proc.returncode, piped) == (0, b"HELLO\nPOD\ndone\n"), err_bytes
    refused = await cluster.run("-t", "--image", "alpine", "--", "sh")
    assert refused[0] == 125 and "-t is not available for a job in its own image" in refused[2]
    assert await cluster.no_pods_left() == []
