"""The Hodei image for real: podman runs it, and a worker pod from it runs a job end to end.

Needs podman and the image built from this tree (`scripts/build-image`). The end-to-end
test wires the real parts together: the emulator's kubelet starts the worker pod with
podman (restricted security context: uid 10001, read-only root filesystem), the
Kubernetes provider runs with the control plane's ServiceAccount (so rbac.yaml's Role is
what allows it), the agent dials the control plane, and the job's output, exit code and
the pod's deletion are observed.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest

from hodei.api import convert
from hodei.api.v1 import jobs_pb2
from hodei.domain.jobs import Job, JobSpec
from hodei.domain.states import JobState
from kube_emulator.testing import RunningEmulator
from tests.deploy.manifests import DEPLOY, find
from tests.fixtures.certs import TlsFiles
from tests.fixtures.control_plane import MakeControlPlane
from tests.fixtures.stubs import job_stub
from tests.fixtures.waiting import free_port

pytestmark = [pytest.mark.slow, pytest.mark.podman]

IMAGE = "localhost/hodei:latest"
WORKER_IMAGE = "hodei:latest"  # what the manifests and HODEI_WORKER_IMAGE say


def _podman(*args: str) -> subprocess.CompletedProcess[str]:
    podman = shutil.which("podman")
    assert podman is not None
    return subprocess.run([podman, *args], capture_output=True, text=True, timeout=90, check=False)


@pytest.fixture(scope="module")
def image() -> str:
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed (scripts/podman-setup)")
    if _podman("image", "exists", IMAGE).returncode != 0:
        pytest.skip(f"{IMAGE} is not built (scripts/build-image)")
    return IMAGE


def test_image_runs_as_uid_10001_with_hodei_on_path(image: str) -> None:
    result = _podman(
        "run", "--rm", "--read-only", "--tmpfs", "/tmp", "--entrypoint", "/bin/sh", image,
        "-c", "id -u; id -g; command -v hodei; echo $HOME",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["10001", "10001", "/opt/hodei/bin/hodei", "/tmp"]


def test_image_entrypoint_is_hodei_and_the_agent_needs_its_variables(image: str) -> None:
    config = json.loads(_podman("image", "inspect", image).stdout)[0]["Config"]
    assert config["Entrypoint"] == ["hodei"]
    assert config["Cmd"] == ["server"]
    result = _podman("run", "--rm", "--read-only", "--tmpfs", "/tmp", image, "worker")
    assert result.returncode != 0
    assert "HODEI_SERVER_ADDRESS" in result.stderr


async def _run_job(address: str, spec: JobSpec) -> tuple[Job, dict[str, bytes]]:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = job_stub(channel)
        reply = await stub.SubmitJob(jobs_pb2.SubmitJobRequest(spec=convert.spec_to_pb(spec)))
        views = [v async for v in stub.WatchJob(jobs_pb2.WatchJobRequest(id=reply.id))]
        done = convert.job_from_pb(views[-1])
        out = {"STDOUT": b"", "STDERR": b""}
        async for message in stub.StreamLogs(jobs_pb2.StreamLogsRequest(job_id=reply.id)):
            chunk = convert.chunk_from_pb(message)
            out[chunk.stream.value] += chunk.data
        return done, out


async def _pods_gone(emulator: RunningEmulator, within: float) -> list[str]:
    async with asyncio.timeout(within):
        while True:
            result = await asyncio.to_thread(
                emulator.kubectl, "get", "pods", "-n", "hodei-workers", "-o", "name"
            )
            names = result.stdout.split()
            if result.returncode == 0 and not names:
                return names
            await asyncio.sleep(0.2)


@pytest.mark.timeout(240)
async def test_worker_pod_from_the_image_runs_a_job_end_to_end(
    image: str,
    kube_emulator_factory: Callable[..., RunningEmulator],
    control_plane_factory: MakeControlPlane,
) -> None:
    emulator = await asyncio.to_thread(
        kube_emulator_factory, kubelet=True, runtime="podman", images=(WORKER_IMAGE,)
    )
    for name in ("namespace.yaml", "rbac.yaml", "network-policy.yaml"):
        emulator.apply_manifest(DEPLOY / name)
    identity = emulator.serviceaccount_kubeconfig("hodei-system", "hodei-control-plane")
    plane = await control_plane_factory(
        env={
            "HODEI_K8S_ENABLED": "1",
            "HODEI_LOCAL_ENABLED": "0",
            "HODEI_K8S_KUBECONFIG": str(identity),
            "HODEI_WORKER_IMAGE": WORKER_IMAGE,
        }
    )
    script = "id -u; touch /probe 2>/dev/null || echo read-only; echo oops >&2; exit 3"

    done, out = await asyncio.wait_for(
        _run_job(plane.address, JobSpec(command=("sh", "-c", script))), timeout=150
    )

    assert (done.state, done.exit_code) == (JobState.FAILED, 3), done
    assert out["STDOUT"] == b"10001\nread-only\n"
    assert out["STDERR"] == b"oops\n"
    assert await _pods_gone(emulator, within=60) == []


def _control_plane_env(kubeconfig: str, grpc_port: int, http_port: int) -> dict[str, str]:
    """What the Deployment's container gets: the ConfigMap, then its own env (Secret: a value).

    Only the listen ports move (host network here) and the kubeconfig replaces the
    in-cluster credentials the emulator cannot mount."""
    deployment = find("Deployment", "hodei-control-plane")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    env = dict(find("ConfigMap", "hodei-provider-config")["data"])
    env.update({e["name"]: e["value"] for e in container["env"] if "value" in e})
    env.update(
        HODEI_API_TOKEN="secret-token",
        HODEI_GRPC_ADDRESS=f"127.0.0.1:{grpc_port}",
        HODEI_HTTP_ADDRESS=f"127.0.0.1:{http_port}",
        HODEI_K8S_KUBECONFIG=kubeconfig,
    )
    return env


def _http_status(url: str, context: ssl.SSLContext | None = None) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2, context=context) as response:
            status: int = response.status
            return status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


@pytest.mark.timeout(180)
def test_control_plane_runs_from_the_image_as_the_deployment_configures_it(
    image: str, kube_emulator: RunningEmulator, tmp_path: Path, tls_files: TlsFiles
) -> None:
    for name in ("namespace.yaml", "rbac.yaml", "network-policy.yaml", "configmap.yaml"):
        kube_emulator.apply_manifest(DEPLOY / name)
    kubeconfig = tmp_path / "control-plane.kubeconfig"
    identity = kube_emulator.serviceaccount_kubeconfig("hodei-system", "hodei-control-plane")
    kubeconfig.write_text(identity.read_text())
    kubeconfig.chmod(0o644)  # readable by uid 10001 inside the container
    # The Deployment mounts the (optional) ConfigMap hodei-pod-templates there: no profiles.
    templates = tmp_path / "pod-templates"
    templates.mkdir()
    templates.chmod(0o755)
    # The Deployment mounts the Secret hodei-tls there (tls.crt, tls.key, ca.crt).
    secret = tmp_path / "hodei-tls"
    secret.mkdir()
    shutil.copy(tls_files.server_cert, secret / "tls.crt")
    shutil.copy(tls_files.server_key, secret / "tls.key")
    for path in (secret, *secret.iterdir()):
        path.chmod(0o755 if path.is_dir() else 0o644)  # readable by uid 10001
    grpc_port, http_port = free_port(), free_port()
    env = _control_plane_env("/etc/hodei/kubeconfig", grpc_port, http_port)
    name = f"hodei-control-plane-test-{grpc_port}"
    env_args = [arg for key, value in env.items() for arg in ("--env", f"{key}={value}")]
    started = _podman(
        "run", "--detach", "--name", name, "--network", "host", "--read-only",
        "--user", "10001:10001", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
        "--tmpfs", "/tmp", "--tmpfs", "/var/lib/hodei:rw,mode=1777",
        "--volume", f"{kubeconfig}:/etc/hodei/kubeconfig:ro",
        "--volume", f"{secret}:{Path(env['HODEI_TLS_CERT_FILE']).parent}:ro",
        "--volume", f"{templates}:{env['HODEI_K8S_POD_TEMPLATES_DIR']}:ro", *env_args, image,
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    try:
        base = f"https://127.0.0.1:{http_port}"  # the probes' scheme: HTTPS
        trust = ssl.create_default_context(cafile=str(tls_files.ca.cert_file))
        deadline = time.monotonic() + 60
        while _http_status(f"{base}/readyz", trust) != 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        logs = _podman("logs", name)
        assert _http_status(f"{base}/readyz", trust) == 200, logs.stdout + logs.stderr
        assert _http_status(f"{base}/healthz", trust) == 200
        stopped = _podman("stop", "--time", "20", name)
        assert stopped.returncode == 0, stopped.stderr
        state = json.loads(_podman("inspect", name).stdout)[0]["State"]
        # SIGTERM drains and exits 0 (not 137 after the stop timeout: PID 1 handles it).
        assert state["ExitCode"] == 0, _podman("logs", name).stderr
    finally:
        _podman("rm", "--force", "--time", "0", name)
