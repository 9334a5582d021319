"""Pods run as real podman containers through ``podman kube play`` (the ``podman`` runtime).

Needs podman and the base image ``scripts/podman-setup`` builds; skipped otherwise.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from .harness import Node, condition, container, phase_is, terminated, waiting_reason

IMAGE = "localhost/debian-python:bookworm"
ABSENT = "localhost/never-built:1"  # listed for the node, missing from podman's storage


def _podman_ready() -> str:
    if shutil.which("podman") is None:
        return "podman is not installed (scripts/podman-setup installs it)"
    found = subprocess.run(["podman", "image", "exists", IMAGE], check=False)
    if found.returncode != 0:
        return f"image {IMAGE} is missing (scripts/podman-setup builds it)"
    return ""


_REASON = _podman_ready()
pytestmark = [
    pytest.mark.slow,
    pytest.mark.podman,
    pytest.mark.skipif(bool(_REASON), reason=_REASON or "podman ready"),
]


def python3(code: str, **fields: object) -> dict[str, object]:
    return container("main", "python3", "-c", code, image=IMAGE, **fields)


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[Node]:
    async with Node(tmp_path, runtime="podman", images=(IMAGE, ABSENT)) as node:
        yield node


async def test_user_env_read_only_root_volume_and_host_network(node: Node) -> None:
    async def greet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"hello from the host\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(greet, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    code = (
        "import os, socket\n"
        "print('uid', os.getuid(), 'env', os.environ['GREETING'])\n"
        "try:\n    open('/root-file', 'w')\nexcept OSError as e:\n    print('root', e.strerror)\n"
        "open('/scratch/f', 'w').write('ok'); print('scratch', open('/scratch/f').read())\n"
        f"s = socket.create_connection(('127.0.0.1', {port}))\n"
        "print(s.recv(100).decode().strip())\n"
    )
    security = {"runAsUser": 1000, "runAsNonRoot": True, "readOnlyRootFilesystem": True}
    async with server:
        node.create(
            "real",
            python3(
                code,
                env=[{"name": "GREETING", "value": "hi"}],
                securityContext=security,
                volumeMounts=[{"name": "scratch", "mountPath": "/scratch"}],
            ),
            volumes=[{"name": "scratch", "emptyDir": {}}],
        )
        pod = await node.wait_for("real", phase_is("Succeeded", "Failed"), within=60)
        log = node.log("real")
    assert pod["status"]["phase"] == "Succeeded", log
    assert log.splitlines() == [
        "uid 1000 env hi",
        "root Read-only file system",
        "scratch ok",
        "hello from the host",
    ]
    state = terminated(pod)
    assert (state["exitCode"], state["reason"]) == (0, "Completed")
    assert pod["status"]["containerStatuses"][0]["containerID"].startswith("podman://")
    assert condition(pod, "Ready")["reason"] == "PodCompleted"


async def test_exit_code_and_missing_executable(node: Node) -> None:
    node.create("exit3", python3("raise SystemExit(3)"))
    node.create("noexec", container("main", "no-such-binary", image=IMAGE))
    failed = await node.wait_for("exit3", phase_is("Failed"), within=60)
    assert (terminated(failed)["exitCode"], terminated(failed)["reason"]) == (3, "Error")
    start = await node.wait_for("noexec", phase_is("Failed"), within=60)
    state = terminated(start)
    assert (state["exitCode"], state["reason"]) == (128, "StartError")
    assert "executable file not found" in state["message"]


async def test_image_missing_from_podman_is_err_image_pull(node: Node) -> None:
    node.create("absent", container("main", "true", image=ABSENT))
    pod = await node.wait_for("absent", waiting_reason("ErrImagePull"), within=30)
    assert pod["status"]["phase"] == "Pending"


async def test_memory_limit_is_oom_killed(node: Node) -> None:
    hog = "b = bytearray(300 * 2**20); b[::4096] = b'x' * len(b[::4096])"
    node.create("hog", python3(hog, resources={"limits": {"memory": "64Mi"}}))
    pod = await node.wait_for("hog", phase_is("Failed", "Succeeded"), within=60)
    state = terminated(pod)
    assert (state["exitCode"], state["reason"]) == (137, "OOMKilled")


async def test_graceful_delete_stops_and_removes_the_podman_pod(node: Node) -> None:
    stubborn = (
        "import os, signal, time\n"
        "signal.signal(signal.SIGTERM, lambda *_: os.write(1, b'SIGTERM\\n'))\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    created = node.create("stubborn", python3(stubborn))
    await node.wait_for("stubborn", phase_is("Running"), within=60)
    await node.wait_log("stubborn", "ready", within=30)
    node.store.delete_pod("default", "stubborn", 1)
    await node.wait_log("stubborn", "SIGTERM")
    final = await node.wait_deleted("stubborn", within=30)
    assert (terminated(final)["exitCode"], terminated(final)["reason"]) == (137, "Error")
    assert await _podman_pods(created["metadata"]["uid"]) == ""


async def test_stopping_the_kubelet_removes_running_podman_pods(tmp_path: Path) -> None:
    async with Node(tmp_path, runtime="podman", images=(IMAGE,)) as node:
        created = node.create("long", python3("import time; time.sleep(60)"))
        await node.wait_for("long", phase_is("Running"), within=60)
    assert await _podman_pods(created["metadata"]["uid"]) == ""


async def _podman_pods(uid: str) -> str:
    listing = await asyncio.create_subprocess_exec(
        *("podman", "pod", "ps", "--filter", f"label=kube-emulator/uid={uid}"),
        *("--format", "{{.Name}}"),
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await listing.communicate()
    return out.decode().strip()


async def test_configmap_and_secret_volumes_are_mounted_read_only_where_asked(node: Node) -> None:
    node.create_object(
        "configmaps",
        {"metadata": {"name": "settings", "namespace": "default"}, "data": {"mode": "fast"}},
    )
    node.create_object(
        "secrets",
        {"metadata": {"name": "creds", "namespace": "default"}, "data": {"pw": "czNjcjN0"}},
    )
    code = (
        "print(open('/etc/app/mode').read(), open('/var/run/creds/pw').read())\n"
        "try:\n    open('/etc/app/other', 'w')\nexcept OSError as e:\n    print(e.strerror)\n"
    )
    node.create(
        "mounted",
        python3(
            code,
            securityContext={"runAsUser": 1000, "runAsNonRoot": True},
            volumeMounts=[
                {"name": "settings", "mountPath": "/etc/app", "readOnly": True},
                {"name": "creds", "mountPath": "/var/run/creds", "readOnly": True},
            ],
        ),
        volumes=[
            {"name": "settings", "configMap": {"name": "settings"}},
            {"name": "creds", "secret": {"secretName": "creds"}},
        ],
    )
    pod = await node.wait_for("mounted", phase_is("Succeeded", "Failed"), within=60)
    log = node.log("mounted")
    assert pod["status"]["phase"] == "Succeeded", log
    assert log.splitlines() == ["fast s3cr3t", "Read-only file system"]
