"""Jobs in images without Python or Hodei, on worker pods that podman really runs.

The emulator's kubelet runs each worker pod with ``podman kube play``: the init container
places the launcher from the Hodei image, the job's container runs it in the named image
(a ``FROM scratch`` busybox, a Debian without Python, both built here), and the agent's
container talks to the control plane, which the Kubernetes provider drives with the
control plane's ServiceAccount (so rbac.yaml's three rules are all it has).

Needs podman, busybox-static and the Hodei image built from this tree
(``scripts/build-image``); these are the only tests of jobs in their own image, since
the emulator's process runtime has no image filesystems to place a launcher into.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import pytest

from hodei.api.v1 import jobs_pb2, jobs_pb2_grpc, types_pb2
from hodei.domain.jobs import Resources, SecretKeyRef
from hodei.domain.states import JobState
from hodei.server.app import ControlPlane
from kube_emulator.testing import RunningEmulator
from tests.deploy.manifests import DEPLOY
from tests.fixtures.control_plane import MakeControlPlane
from tests.fixtures.images import build_test_images, missing_tools
from tests.fixtures.stubs import job_stub
from tests.server.helpers import logs, output, submit, wait_done

WORKER_IMAGE = "hodei:latest"
_REASON = missing_tools() or (
    ""
    if shutil.which("podman")
    and subprocess.run(["podman", "image", "exists", "localhost/" + WORKER_IMAGE]).returncode == 0
    else f"{WORKER_IMAGE} is not built (scripts/build-image)"
)
pytestmark = [
    pytest.mark.slow,
    pytest.mark.podman,
    pytest.mark.skipif(bool(_REASON), reason=_REASON or "ready"),
]
CONTROL_PLANE = ("hodei-system", "hodei-control-plane")


# A pod profile whose "job" container gets env (a value, a ConfigMap key) and a
# ConfigMap volume: for a job in its own image these land on the user's container.
PROFILE = """\
apiVersion: v1
kind: Pod
spec:
  volumes: [{name: settings, configMap: {name: app-settings}}]
  containers:
    - name: job
      env:
        - {name: APP_PLAIN, value: plain value}
        - {name: APP_OVERRIDDEN, value: from the profile}
        - name: APP_MODE
          valueFrom: {configMapKeyRef: {name: app-settings, key: mode}}
      volumeMounts: [{name: settings, mountPath: /etc/app, readOnly: true}]
"""


@dataclass
class Cluster:
    emulator: RunningEmulator
    plane: ControlPlane
    plane_env: dict[str, str]
    busybox: str
    debian: str
    stub: jobs_pb2_grpc.JobServiceStub

    def pods_yaml(self) -> str:
        result = self.emulator.kubectl("get", "pods", "-n", "hodei-workers", "-o", "yaml")
        assert result.returncode == 0, result.stderr
        return result.stdout

    async def pods_gone(self, within: float = 60) -> list[str]:
        async with asyncio.timeout(within):
            while True:
                got = await asyncio.to_thread(
                    self.emulator.kubectl, "get", "pods", "-n", "hodei-workers", "-o", "name"
                )
                if got.returncode == 0 and not got.stdout.split():
                    return []
                await asyncio.sleep(0.2)


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    return build_test_images(tmp_path_factory.mktemp("images"))


@pytest.fixture(scope="module")
def templates(tmp_path_factory: pytest.TempPathFactory) -> str:
    directory = tmp_path_factory.mktemp("pod-templates")
    (directory / "app.yaml").write_text(PROFILE)
    return str(directory)


def _plane_env(emulator: RunningEmulator, templates: str) -> dict[str, str]:
    return {
        "HODEI_K8S_ENABLED": "1",
        "HODEI_LOCAL_ENABLED": "0",
        "HODEI_K8S_KUBECONFIG": str(emulator.serviceaccount_kubeconfig(*CONTROL_PLANE)),
        "HODEI_WORKER_IMAGE": WORKER_IMAGE,
        "HODEI_K8S_POD_TEMPLATES_DIR": templates,
    }


@pytest.fixture
async def cluster(
    images: tuple[str, str],
    templates: str,
    kube_emulator_factory: object,
    control_plane_factory: MakeControlPlane,
) -> AsyncIterator[Cluster]:
    busybox, debian = images
    emulator: RunningEmulator = await asyncio.to_thread(
        kube_emulator_factory,  # type: ignore[arg-type]
        kubelet=True,
        runtime="podman",
        images=(WORKER_IMAGE, busybox, debian),
        serviceaccounts=(CONTROL_PLANE,),
    )
    for name in ("namespace.yaml", "rbac.yaml", "network-policy.yaml"):
        emulator.apply_manifest(DEPLOY / name)
    env = _plane_env(emulator, templates)
    plane = await control_plane_factory(env=env)
    async with grpc.aio.insecure_channel(plane.address) as channel:
        yield Cluster(emulator, plane, env, busybox, debian, job_stub(channel))


async def _first_output(stub: jobs_pb2_grpc.JobServiceStub, job_id: str) -> bytes:
    call = stub.StreamLogs(jobs_pb2.StreamLogsRequest(job_id=job_id, follow=True))
    try:
        async for chunk in call:
            return bytes(chunk.data)
    finally:
        call.cancel()
    raise AssertionError("the job ended without output")


@pytest.mark.timeout(300)
async def test_scratch_busybox_image(cluster: Cluster) -> None:
    stub = cluster.stub
    script = "echo out $GREETING $SECRET_NAME; pwd; id -u; echo err >&2; echo ready; sleep 60"
    job = await submit(
        stub, "busybox", "sh", "-c", script, image=cluster.busybox,
        env={"SECRET_NAME": "s3cr3t-value"}, timeout_seconds=60,
    )  # fmt: skip
    assert await asyncio.wait_for(_first_output(stub, job.id), 120)
    # While it runs: neither the command nor the env value is in the pod's spec.
    pods = cluster.pods_yaml()
    assert "hodei-worker-" in pods
    assert "s3cr3t-value" not in pods
    assert "sleep 60" not in pods
    await stub.CancelJob(jobs_pb2.CancelJobRequest(id=job.id))
    done = await asyncio.wait_for(wait_done(stub, job.id), 60)
    assert done.state is JobState.CANCELLED
    out = output(await logs(stub, job.id))
    # The image's ENV and WORKDIR apply; the pod's restricted context forces uid 10001.
    assert out["STDOUT"] == b"out hello from the image s3cr3t-value\n/srv/app\n10001\nready\n"
    assert out["STDERR"] == b"err\n"

    missing = await submit(stub, "nope", "x", image=cluster.busybox)
    done = await asyncio.wait_for(wait_done(stub, missing.id), 120)
    assert (done.state, done.exit_code, done.reason) == (JobState.FAILED, 127, "CommandNotFound")
    assert done.message is not None and done.message.startswith("nope: command not found")

    rooted = await submit(stub, "rootonly", "true", image=cluster.busybox)
    done = await asyncio.wait_for(wait_done(stub, rooted.id), 120)
    assert (done.state, done.exit_code, done.reason) == (JobState.FAILED, 126, "StartError")
    assert done.message is not None
    assert "/bin/rootonly: permission denied for uid 10001" in done.message

    signalled = await submit(stub, "busybox", "sh", "-c", "kill -TERM $$", image=cluster.busybox)
    done = await asyncio.wait_for(wait_done(stub, signalled.id), 120)
    assert (done.state, done.exit_code) == (JobState.FAILED, 143)
    assert await cluster.pods_gone() == []


@pytest.mark.timeout(300)
async def test_debian_without_python_timeout_and_oom(cluster: Cluster) -> None:
    stub = cluster.stub
    script = "command -v python3 || echo no python; echo $GREETING"
    probe = await submit(stub, "sh", "-c", script, image=cluster.debian)
    done = await asyncio.wait_for(wait_done(stub, probe.id), 120)
    assert (done.state, done.exit_code) == (JobState.SUCCEEDED, 0)
    assert output(await logs(stub, probe.id))["STDOUT"] == b"no python\nhello from debian\n"

    # hodei run -i --workdir /usr: the client's stdin reaches the command, which runs there.
    reader = await submit(stub, "sh", "-c", "cat; pwd", image=cluster.debian, stdin=True,
                          workdir="/usr")  # fmt: skip

    async def typed() -> AsyncIterator[types_pb2.JobInput]:
        yield types_pb2.JobInput(job_id=reader.id, data=b"typed\n")
        yield types_pb2.JobInput(job_id=reader.id, eof=True)

    await stub.SendInput(typed())
    done = await asyncio.wait_for(wait_done(stub, reader.id), 120)
    assert (done.state, done.exit_code) == (JobState.SUCCEEDED, 0)
    assert output(await logs(stub, reader.id))["STDOUT"] == b"typed\n/usr\n"

    # A tree that ignores SIGTERM: the timeout still ends it, on time.
    tree = "trap '' TERM; sleep 60 & sleep 60 & echo started; wait"
    slow = await submit(stub, "sh", "-c", tree, image=cluster.debian, timeout_seconds=2)
    await asyncio.wait_for(_first_output(stub, slow.id), 120)
    started = time.monotonic()
    done = await asyncio.wait_for(wait_done(stub, slow.id), 60)
    assert (done.state, done.reason) == (JobState.TIMED_OUT, "DeadlineExceeded")
    assert time.monotonic() - started < 10  # 2 s + kill grace, not the pod's deadline

    hog = "x=$(head -c 400000000 /dev/zero | tr '\\0' a); echo survived"
    oom = await submit(
        stub, "sh", "-c", hog, image=cluster.debian, resources=Resources(memory_limit="64Mi")
    )
    done = await asyncio.wait_for(wait_done(stub, oom.id), 120)
    assert (done.state, done.exit_code, done.reason) == (JobState.FAILED, 137, "OOMKilled")
    assert done.message is not None and "64Mi" in done.message
    # conmon notes an OOM kill in a file "oom" in its working directory: not this one.
    assert not await asyncio.to_thread(os.path.exists, "oom")
    assert await cluster.pods_gone() == []


@pytest.mark.timeout(300)
async def test_output_survives_a_control_plane_restart(
    cluster: Cluster, control_plane_factory: MakeControlPlane
) -> None:
    stub = cluster.stub
    script = "echo before; sleep 4; echo after; echo late >&2"
    job = await submit(stub, "busybox", "sh", "-c", script, image=cluster.busybox)
    assert await asyncio.wait_for(_first_output(stub, job.id), 120) == b"before\n"
    address = cluster.plane.address
    await cluster.plane.stop(grace=0)
    env = {**cluster.plane_env, "HODEI_GRPC_ADDRESS": address}
    plane = await control_plane_factory(env=env)
    async with grpc.aio.insecure_channel(plane.address) as channel:
        stub = job_stub(channel)
        done = await asyncio.wait_for(wait_done(stub, job.id), 120)
        assert (done.state, done.exit_code) == (JobState.SUCCEEDED, 0)
        out = output(await logs(stub, job.id))
        assert out == {"STDOUT": b"before\nafter\n", "STDERR": b"late\n"}
    assert await cluster.pods_gone() == []


@pytest.mark.timeout(300)
async def test_profile_env_volume_and_secret_env_reach_the_command(cluster: Cluster) -> None:
    for args in (
        ("configmap", "app-settings", "--from-literal=mode=fast"),
        ("secret", "generic", "db-creds", "--from-literal=password=s3cr3t"),
    ):
        made = cluster.emulator.kubectl("create", *args, "-n", "hodei-workers")
        assert made.returncode == 0, made.stderr
    script = (
        'echo "$APP_PLAIN|$APP_MODE|$DB_PASSWORD|$APP_OVERRIDDEN|$JOB_OWN|$GREETING"; '
        "cat /etc/app/mode; echo; env | grep ^HODEI_ | cut -d= -f1"
    )
    job = await submit(
        cluster.stub, "busybox", "sh", "-c", script, image=cluster.busybox, profile="app",
        env={"JOB_OWN": "own", "APP_OVERRIDDEN": "from the job"},
        secret_env={"DB_PASSWORD": SecretKeyRef("db-creds", "password")},
    )  # fmt: skip
    done = await asyncio.wait_for(wait_done(cluster.stub, job.id), 120)
    out = output(await logs(cluster.stub, job.id))
    assert (done.state, done.exit_code) == (JobState.SUCCEEDED, 0), out
    # The container's env (the profile's values, the Secret's key, the image's ENV) is
    # kept, the job's own variables go on top, and of Hodei's variables only the job id.
    assert out["STDOUT"] == (
        b"plain value|fast|s3cr3t|from the job|own|hello from the image\nfast\nHODEI_JOB_ID\n"
    )
    assert await cluster.pods_gone() == []
