"""End to end: `hodei run` against a control plane whose jobs run on worker pods that the
emulator's kubelet runs as local `hodei worker` processes."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path
from typing import Any

import pytest

from hodei.providers.base import WorkerPhase

from .conftest import CONTROL_PLANE, Make
from .helpers import (
    MANIFESTS,
    running_provider,
    settings_for,
    worker_request,
)

pytestmark = pytest.mark.slow


async def test_exit_code_output_and_cleanup(cluster_factory: Make) -> None:
    cluster = await cluster_factory()
    code, out, err = await cluster.run("--", "sh", "-c", "echo hi; exit 4")
    assert (code, out) == (4, "hi\n"), err
    assert await cluster.no_pods_left() == []


async def test_timeout_exits_124_and_cleans_up(cluster_factory: Make) -> None:
    cluster = await cluster_factory()
    code, _, err = await cluster.run("--timeout", "1", "--", "sleep", "30")
    assert code == 124, err
    assert await cluster.no_pods_left() == []


@pytest.mark.parametrize(
    "signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name
)
async def test_a_stop_signal_cancels_the_job_and_deletes_the_pod(
    cluster_factory: Make, signum: signal.Signals
) -> None:
    cluster = await cluster_factory()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "hodei",
        "run",
        "--",
        "sh",
        "-c",
        "echo started; sleep 60",
        env=cluster.env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 30)
    assert line == b"started\n"
    proc.send_signal(signum)
    await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 128 + signum
    assert await cluster.no_pods_left() == []


async def test_unschedulable_exits_125_with_the_scheduler_message(cluster_factory: Make) -> None:
    cluster = await cluster_factory(HODEI_K8S_PENDING_TIMEOUT="2")
    code, out, err = await cluster.run("--cpu", "64", "--", "true")
    assert code == 125, err
    assert out == ""
    assert "Unschedulable" in err
    assert "Insufficient cpu" in err
    assert await cluster.no_pods_left() == []


async def test_bad_image_exits_125_naming_the_image(cluster_factory: Make) -> None:
    cluster = await cluster_factory()
    code, _, err = await cluster.run("--image", "nope:1", "--", "true")
    assert code == 125, err
    assert "nope:1" in err
    assert "ErrImagePull" in err or "ImagePullBackOff" in err
    assert await cluster.no_pods_left() == []


async def test_oom_is_reported_with_the_limit(cluster_factory: Make) -> None:
    cluster = await cluster_factory()
    hog = "b = b'x' * (1024 * 2**20); import time; time.sleep(30)"
    code, _, err = await cluster.run("--memory", "300Mi", "--", sys.executable, "-c", hog)
    assert code == 137  # killed by SIGKILL, as a shell reports it
    assert "OOMKilled" in err, err
    assert "300Mi" in err
    assert await cluster.no_pods_left() == []


async def test_agent_failing_before_registering_reports_its_log_tail(
    kube_emulator_factory: Any, control_plane: Any
) -> None:
    emulator = kube_emulator_factory(
        kubelet=True, images=("hodei:latest",), serviceaccounts=(CONTROL_PLANE,)
    )
    emulator.apply_manifest(MANIFESTS / "namespace.yaml")
    emulator.apply_manifest(MANIFESTS / "rbac.yaml")
    settings = settings_for(Path(emulator.serviceaccount_kubeconfig(*CONTROL_PLANE)))
    async with running_provider(settings) as (provider, recorder):
        # A token the control plane never issued: the agent is turned away and exits.
        request = worker_request(server_address=control_plane.address, token="forged")
        await provider.create_worker(request)
        exited = await recorder.wait_for(request.worker_id, WorkerPhase.EXITED, within=60)
        assert exited.reason == "ContainerExited"
        assert exited.exit_code not in (None, 0)
        assert exited.message is not None
        assert "last lines of its log" in exited.message
        assert "register token rejected" in exited.message  # the agent's own words
        counts = emulator.request_counts()
        assert counts.get(("get", "pods/log")) == 1
        await provider.delete_worker(request.worker_id)
        await recorder.wait_for(request.worker_id, WorkerPhase.GONE)
