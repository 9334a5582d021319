"""Kill -9 the control plane mid-run and restart it: no orphan pods, no stuck jobs.

The control plane runs as a real `hodei server` process (so it can be killed for real)
with the Kubernetes provider against the emulator's kubelet."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from hodei.providers.kubernetes.pods import LABEL_JOB_ID
from tests.fixtures.waiting import free_port

from .helpers import MANIFESTS, NAMESPACE, Admin, no_pods

pytestmark = pytest.mark.slow

CONTROL_PLANE = ("hodei-system", "hodei-control-plane")
TERMINAL = {"SUCCEEDED", "FAILED", "CANCELLED", "TIMED_OUT"}


class Server:
    """`hodei server` processes sharing one database and one gRPC address."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return self.env["HODEI_GRPC_ADDRESS"]

    def spawn(self) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "hodei", "server"],
                env=self.env,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )

    async def start(self) -> None:
        """Start `hodei server` and wait until it answers the jobs API."""
        self.spawn()
        assert self.proc is not None
        async with asyncio.timeout(30):
            while True:
                assert self.proc.poll() is None, self.log.read_text()
                probe = await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "hodei",
                    "jobs",
                    "list",
                    env=dict(self.env, HODEI_SERVER=self.address),
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.DEVNULL,
                )
                if await probe.wait() == 0:
                    return
                await asyncio.sleep(0.1)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def server(kube_emulator_factory: Any, tmp_path: Path) -> Iterator[tuple[Server, Any]]:
    emulator = kube_emulator_factory(
        kubelet=True, images=("hodei:latest",), serviceaccounts=(CONTROL_PLANE,)
    )
    emulator.apply_manifest(MANIFESTS / "namespace.yaml")
    emulator.apply_manifest(MANIFESTS / "rbac.yaml")
    env = dict(os.environ)
    env.pop("HODEI_API_TOKEN", None)
    env.update(
        HODEI_GRPC_ADDRESS=f"127.0.0.1:{free_port()}",
        HODEI_HTTP_ADDRESS="127.0.0.1:0",
        HODEI_DATABASE_URL=f"sqlite:///{tmp_path / 'hodei.db'}",
        HODEI_K8S_ENABLED="1",
        HODEI_LOCAL_ENABLED="0",
        HODEI_K8S_KUBECONFIG=str(emulator.serviceaccount_kubeconfig(*CONTROL_PLANE)),
    )
    handle = Server(env, tmp_path / "server.log")
    try:
        yield handle, emulator
    finally:
        handle.stop()


@pytest.fixture
async def admin(server: tuple[Server, Any]) -> AsyncIterator[Admin]:
    async with Admin.connect(Path(server[1].admin_kubeconfig)) as handle:
        yield handle


def cli(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(server.env, HODEI_SERVER=server.address)
    return subprocess.run(
        [sys.executable, "-m", "hodei", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


async def running_pod(admin: Admin, job_id: str) -> str:
    async with asyncio.timeout(30):
        while True:
            pods = await admin.core.list_namespaced_pod(
                NAMESPACE, label_selector=f"{LABEL_JOB_ID}={job_id}"
            )
            for pod in pods.items:
                if pod.status.phase == "Running":
                    return str(pod.metadata.name)
            await asyncio.sleep(0.1)


async def settled(server: Server, job_id: str) -> dict[str, Any]:
    async with asyncio.timeout(60):
        while True:
            job: dict[str, Any] = json.loads(
                cli(server, "jobs", "show", job_id, "-o", "json").stdout
            )
            if job["state"] in TERMINAL:
                return job
            await asyncio.sleep(0.2)


async def test_kill_9_mid_run_leaves_no_orphans_and_no_stuck_jobs(
    server: tuple[Server, Any], admin: Admin
) -> None:
    plane, _ = server
    await plane.start()
    survivor = cli(plane, "run", "--detach", "--", "sh", "-c", "sleep 3; echo done").stdout.strip()
    vanished = cli(plane, "run", "--detach", "--", "sh", "-c", "sleep 6; echo again").stdout.strip()
    await running_pod(admin, survivor)
    vanished_pod = await running_pod(admin, vanished)

    plane.kill()
    await admin.delete_now(vanished_pod)  # its pod disappears while nobody watches
    await plane.start()

    survived = await settled(plane, survivor)
    lost = await settled(plane, vanished)
    assert survived["state"] == "SUCCEEDED", survived
    # Losing the pod is a disruption: the job runs again on a new pod.
    assert lost["state"] == "SUCCEEDED" and lost["attempt"] == 2, lost
    assert [a["reason"] for a in lost["attempts"]] == ["WorkerLost", "Completed"], lost
    assert lost["attempts"][0]["disruption"] is True
    assert cli(plane, "jobs", "logs", survivor).stdout == "done\n"
    await no_pods(admin)
