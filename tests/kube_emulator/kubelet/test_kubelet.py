"""The scheduler and kubelet together, driven through the emulator's store (no HTTP)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from pathlib import Path
from typing import Any

import pytest

from kube_emulator.kubelet import NODE_NAME
from kube_emulator.resources import by_plural

from .harness import (
    Node,
    condition,
    container,
    phase_is,
    python,
    terminated,
    waiting_reason,
)

pytestmark = pytest.mark.slow


async def test_pod_runs_to_success_with_logs_and_status(tmp_path: Path) -> None:
    async with Node(tmp_path) as node:
        node.create("ok", python("import sys; print('hello'); sys.stdout.flush()"))
        pod = await node.wait_for("ok", phase_is("Succeeded"))
        assert node.phases("ok") == ["Pending", "Running", "Succeeded"]
        assert pod["spec"]["nodeName"] == NODE_NAME
        assert condition(pod, "PodScheduled")["status"] == "True"
        assert condition(pod, "Ready")["reason"] == "PodCompleted"
        state = terminated(pod)
        assert (state["exitCode"], state["reason"]) == (0, "Completed")
        assert state["startedAt"] <= state["finishedAt"]
        assert pod["status"]["hostIP"] == "127.0.0.1"
        assert pod["status"]["qosClass"] == "BestEffort"
        assert node.log("ok") == "hello\n"


async def test_container_creating_then_running(tmp_path: Path) -> None:
    async with Node(tmp_path) as node:
        node.create("slow", python("import time; time.sleep(30)"))
        creating = await node.wait_for("slow", waiting_reason("ContainerCreating"))
        assert creating["status"]["phase"] == "Pending"
        running = await node.wait_for("slow", phase_is("Running"))
        (status,) = running["status"]["containerStatuses"]
        assert status["ready"] is True
        assert "startedAt" in status["state"]["running"]
        assert condition(running, "Ready")["status"] == "True"


async def test_non_zero_exit_fails_the_pod(tmp_path: Path) -> None:
    async with Node(tmp_path) as node:
        node.create("bad", python("raise SystemExit(7)"))
        pod = await node.wait_for("bad", phase_is("Failed"))
        assert (terminated(pod)["exitCode"], terminated(pod)["reason"]) == (7, "Error")


async def test_env_args_and_working_dir(tmp_path: Path) -> None:
    workdir = tmp_path / "wd"
    workdir.mkdir()
    code = "import os, sys; print(os.getcwd(), os.environ['A'], os.environ['B'], sys.argv[1:])"
    async with Node(tmp_path) as node:
        node.create(
            "env",
            python(
                code,
                args=["x", "$(A)"],
                env=[{"name": "A", "value": "1"}, {"name": "B", "value": "$(A)2"}],
                workingDir=str(workdir),
            ),
        )
        await node.wait_for("env", phase_is("Succeeded"))
        assert node.log("env") == f"{workdir} 1 12 ['x', '1']\n"


async def test_unknown_image_err_image_pull_then_back_off(tmp_path: Path) -> None:
    async with Node(tmp_path) as node:
        node.create("img", container("main", "true", image="nosuch:1"))
        pulled = await node.wait_for("img", waiting_reason("ErrImagePull"))
        waiting = pulled["status"]["containerStatuses"][0]["state"]["waiting"]
        assert waiting["message"].startswith(
            "rpc error: code = NotFound desc = failed to pull and unpack image "
            '"docker.io/library/nosuch:1"'
        )
        backoff = await node.wait_for("img", waiting_reason("ImagePullBackOff"))
        message = backoff["status"]["containerStatuses"][0]["state"]["waiting"]["message"]
        assert message.startswith('Back-off pulling image "nosuch:1"')
        assert backoff["status"]["phase"] == "Pending"


async def test_missing_configmap_then_created(tmp_path: Path) -> None:
    ref = {"configMapKeyRef": {"name": "settings", "key": "LEVEL"}}
    async with Node(tmp_path) as node:
        node.create(
            "cfg",
            python(
                "import os; print(os.environ['LEVEL'])", env=[{"name": "LEVEL", "valueFrom": ref}]
            ),
        )
        pod = await node.wait_for("cfg", waiting_reason("CreateContainerConfigError"))
        waiting = pod["status"]["containerStatuses"][0]["state"]["waiting"]
        assert waiting["message"] == 'configmap "settings" not found'
        node.create_object(
            "configmaps",
            {"metadata": {"name": "settings", "namespace": "default"}, "data": {"LEVEL": "debug"}},
        )
        await node.wait_for("cfg", phase_is("Succeeded"))
        assert node.log("cfg") == "debug\n"


async def test_secret_env(tmp_path: Path) -> None:
    async with Node(tmp_path) as node:
        node.create_object(
            "secrets",
            {
                "metadata": {"name": "creds", "namespace": "default"},
                "data": {"TOKEN": base64.b64encode(b"s3cret").decode()},
            },
        )
        ref = {"secretKeyRef": {"name": "creds", "key": "TOKEN"}}
        node.create(
            "sec",
            python(
                "import os; print(os.environ['TOKEN'])", env=[{"name": "TOKEN", "valueFrom": ref}]
            ),
        )
        await node.wait_for("sec", phase_is("Succeeded"))
        assert node.log("sec") == "s3cret\n"


async def test_missing_command_is_a_create_container_error(tmp_path: Path) -> None:
    async with Node(tmp_path) as node:
        node.create("nocmd", container("main"))
        pod = await node.wait_for("nocmd", waiting_reason("CreateContainerError"))
        assert pod["status"]["containerStatuses"][0]["state"]["waiting"]["message"] == (
            "no command specified"
        )


async def test_executable_not_found_is_a_start_error(tmp_path: Path) -> None:
    async with Node(tmp_path) as node:
        node.create("noexec", container("main", "no-such-binary-xyz"))
        pod = await node.wait_for("noexec", phase_is("Failed"))
        state = terminated(pod)
        assert (state["exitCode"], state["reason"]) == (128, "StartError")
        assert "executable file not found in $PATH" in state["message"]


async def test_memory_limit_oom_killed(tmp_path: Path) -> None:
    hog = (
        "b = bytearray(300 * 2**20); b[::4096] = b'x' * len(b[::4096]); import time; time.sleep(30)"
    )
    async with Node(tmp_path) as node:
        node.create("hog", python(hog, resources={"limits": {"memory": "64Mi"}}))
        pod = await node.wait_for("hog", phase_is("Failed"))
        state = terminated(pod)
        assert (state["exitCode"], state["reason"]) == (137, "OOMKilled")


async def test_active_deadline_exceeded(tmp_path: Path) -> None:
    async with Node(tmp_path) as node:
        node.create(
            "late",
            python("import time; time.sleep(30)"),
            activeDeadlineSeconds=1,
            terminationGracePeriodSeconds=2,
        )
        pod = await node.wait_for(
            "late", lambda p: "terminated" in str(p["status"].get("containerStatuses"))
        )
        assert pod["status"]["phase"] == "Failed"
        assert pod["status"]["reason"] == "DeadlineExceeded"
        assert (
            pod["status"]["message"]
            == "Pod was active on the node longer than the specified deadline"
        )
        assert terminated(pod)["exitCode"] == 143


async def test_deadline_while_image_cannot_be_pulled(tmp_path: Path) -> None:
    async with Node(tmp_path) as node:
        node.create("stuck", container("main", "true", image="nosuch"), activeDeadlineSeconds=1)
        pod = await node.wait_for("stuck", phase_is("Failed"))
        assert pod["status"]["reason"] == "DeadlineExceeded"
        state = terminated(pod)
        assert (state["exitCode"], state["reason"]) == (137, "ContainerStatusUnknown")


async def test_graceful_delete_sigterm_then_sigkill_then_removed(tmp_path: Path) -> None:
    stubborn = (
        "import os, signal, time\n"
        "signal.signal(signal.SIGTERM, lambda *_: os.write(1, b'SIGTERM\\n'))\n"
        "print('ready', flush=True)\n"
        "while True: time.sleep(0.05)\n"
    )
    async with Node(tmp_path) as node:
        node.create("stubborn", python(stubborn))
        await node.wait_for("stubborn", phase_is("Running"))
        await node.wait_log("stubborn", "ready")
        node.store.delete_pod("default", "stubborn", 1)
        deleting = node.store.get_pod("default", "stubborn")
        assert deleting is not None and deleting["metadata"]["deletionGracePeriodSeconds"] == 1
        await node.wait_log("stubborn", "SIGTERM")  # within the grace period, still there
        final = await node.wait_deleted("stubborn")
        assert node.phases("stubborn")[-1] == "Failed"
        state = terminated(final)
        assert (state["exitCode"], state["reason"]) == (137, "Error")


async def test_delete_with_zero_grace_kills_at_once(tmp_path: Path) -> None:
    async with Node(tmp_path) as node:
        node.create("sleeper", python("import time; print('up', flush=True); time.sleep(30)"))
        await node.wait_for("sleeper", phase_is("Running"))
        node.store.delete_pod("default", "sleeper", 0)
        await node.wait_deleted("sleeper")
        # stop() must find nothing left to kill quickly; no status write after deletion.
        assert node.store.get_pod("default", "sleeper") is None


async def test_unschedulable_until_capacity_frees(tmp_path: Path) -> None:
    big = {"requests": {"cpu": "1500m"}}
    async with Node(tmp_path, node_cpu="2") as node:
        node.create("first", python("import time; time.sleep(30)", resources=big))
        await node.wait_for("first", phase_is("Running"))
        node.create("second", python("print('second')", resources=big))
        pod = await node.wait_for("second", lambda p: "conditions" in p["status"])
        scheduled = condition(pod, "PodScheduled")
        assert scheduled["status"] == "False"
        assert scheduled["reason"] == "Unschedulable"
        assert scheduled["message"] == (
            "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: "
            "1 No preemption victims found for incoming pod."
        )
        assert "nodeName" not in pod["spec"]
        node.store.delete_pod("default", "first", 0)
        done = await node.wait_for("second", phase_is("Succeeded"))
        assert condition(done, "PodScheduled")["status"] == "True"


async def test_node_object_is_registered(tmp_path: Path) -> None:
    async with Node(tmp_path, node_cpu="3", node_memory="6Gi") as node:
        from kube_emulator.resources import by_plural

        nodes = by_plural("nodes")
        assert nodes is not None
        obj = node.store.get(nodes, None, NODE_NAME)
        assert obj is not None
        assert obj["status"]["allocatable"] == {"cpu": "3", "memory": "6Gi", "pods": "110"}
        ready = next(c for c in obj["status"]["conditions"] if c["type"] == "Ready")
        assert ready["status"] == "True"


async def test_stop_kills_what_still_runs(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    code = f"import os, time; open({str(pidfile)!r}, 'w').write(str(os.getpid())); time.sleep(60)"
    async with Node(tmp_path) as node:
        node.create("left", python(code))
        await node.wait_for("left", phase_is("Running"))
        pid = await asyncio.to_thread(_read_pid, pidfile)
    assert not _alive(pid)


def _read_pid(path: Path) -> int:
    for _ in range(500):  # the process writes it right after starting
        with contextlib.suppress(FileNotFoundError, ValueError):
            return int(path.read_text())
        time.sleep(0.01)
    raise AssertionError(f"no pid in {path}")


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


async def test_namespace_deletion_terminates_its_pods(tmp_path: Path) -> None:
    async with Node(tmp_path) as node:
        node.create_object("namespaces", {"metadata": {"name": "doomed"}})
        pod = {
            "metadata": {"name": "inside", "namespace": "doomed"},
            "spec": {
                "restartPolicy": "Never",
                "terminationGracePeriodSeconds": 5,
                "containers": [python("import time; time.sleep(60)")],
            },
        }
        node.create_object("pods", pod)
        namespaces = by_plural("namespaces")
        assert namespaces is not None
        await node.wait_for("inside", phase_is("Running"), namespace="doomed")
        node.store.delete_namespace("doomed")
        final = await node.wait_deleted("inside", namespace="doomed")
        assert terminated(final)["exitCode"] == 143  # SIGTERM ended it within the grace
        assert node.store.get(namespaces, None, "doomed") is None


async def test_pod_with_two_containers_runs_until_both_end(tmp_path: Path) -> None:
    async with Node(tmp_path) as node:
        node.create(
            "pair",
            python("print('quick')", name="quick"),
            python("import time; time.sleep(0.5); print('slow')", name="slow"),
        )
        running = await node.wait_for(
            "pair",
            lambda p: any(
                "terminated" in s["state"] for s in p["status"].get("containerStatuses") or []
            ),
        )
        assert running["status"]["phase"] == "Running"
        ready = condition(running, "Ready")
        assert ready["message"] == "containers with unready status: [quick]"
        done = await node.wait_for("pair", phase_is("Succeeded"))
        assert [s["name"] for s in done["status"]["containerStatuses"]] == ["quick", "slow"]
        assert node.log("pair", "quick") == "quick\n"


async def test_empty_dir_volume_as_working_dir(tmp_path: Path) -> None:
    code = "import os; open('f', 'w').write('x'); print(sorted(os.listdir('.')))"
    async with Node(tmp_path) as node:
        node.create(
            "vol",
            python(
                code,
                workingDir="/scratch",
                volumeMounts=[{"name": "scratch", "mountPath": "/scratch"}],
            ),
            volumes=[{"name": "scratch", "emptyDir": {}}],
        )
        await node.wait_for("vol", phase_is("Succeeded"))
        assert node.log("vol") == "['f']\n"


async def test_events_name_their_reporter(tmp_path: Path) -> None:
    async with Node(tmp_path) as node:
        node.create("ev", python("pass"))
        await node.wait_for("ev", phase_is("Succeeded"))
        events = by_plural("events")
        assert events is not None
        seen = [
            (e["reason"], e["source"]["component"], e["message"])
            for e in node.store.list(events, "default")
            if e["involvedObject"]["name"] == "ev"
        ]
    assert sorted(seen) == sorted(
        [
            ("Scheduled", "default-scheduler", "Successfully assigned default/ev to emulator-node"),
            ("Pulled", "kubelet", 'Container image "python" already present on machine'),
            ("Created", "kubelet", "Created container: main"),
            ("Started", "kubelet", "Started container main"),
        ]
    )


async def test_init_containers_run_first_in_order_sharing_an_empty_dir(tmp_path: Path) -> None:
    # Each container's working directory is the shared emptyDir's mountPath.
    shared: dict[str, Any] = {
        "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}],
        "workingDir": "/scratch",
    }

    def append(text: str) -> str:
        return f"open('f', 'a').write({text!r}); print('wrote', {text!r})"

    async with Node(tmp_path) as node:
        node.create(
            "init",
            python("print(open('f').read())", **shared),
            initContainers=[
                python(append("one "), name="first", **shared),
                python(append("two"), name="second", **shared),
            ],
            volumes=[{"name": "scratch", "emptyDir": {}}],
        )
        pod = await node.wait_for("init", phase_is("Succeeded"))
        inits = pod["status"]["initContainerStatuses"]
        assert [(s["name"], s["state"]["terminated"]["reason"]) for s in inits] == [
            ("first", "Completed"),
            ("second", "Completed"),
        ]
        assert all(s["ready"] for s in inits)
        assert condition(pod, "Initialized")["status"] == "True"
        assert node.log("init") == "one two\n"
        assert node.log("init", "second") == "wrote two\n"


async def test_a_failed_init_container_fails_the_pod_before_its_containers(
    tmp_path: Path,
) -> None:
    async with Node(tmp_path) as node:
        node.create(
            "init-fails",
            python("print('never')", name="main"),
            initContainers=[python("raise SystemExit(3)", name="setup")],
        )
        waiting = await node.wait_for("init-fails", waiting_reason("PodInitializing"))
        assert condition(waiting, "Initialized")["status"] == "False"
        pod = await node.wait_for("init-fails", phase_is("Failed"))
        (init,) = pod["status"]["initContainerStatuses"]
        assert (init["state"]["terminated"]["exitCode"], init["ready"]) == (3, False)
        assert condition(pod, "Initialized") == {
            **condition(pod, "Initialized"),
            "status": "False",
            "reason": "ContainersNotInitialized",
            "message": "containers with incomplete status: [setup]",
        }
        (main,) = pod["status"]["containerStatuses"]
        assert main["state"]["waiting"]["reason"] == "PodInitializing"
        assert node.log("init-fails") == ""
