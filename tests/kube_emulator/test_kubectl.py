"""The real kubectl binary against the emulator (its dispatcher picks kubectl 1.33)."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from kube_emulator.testing import RunningEmulator

pytestmark = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed")

SA = "system:serviceaccount:hodei-system:hodei-control-plane"
MANIFEST = """
apiVersion: v1
kind: Namespace
metadata: {name: app, labels: {app.kubernetes.io/name: hodei}}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: runner, namespace: app}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: app}
data: {LEVEL: debug}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: app}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: "web:1", ports: [{containerPort: 8080, name: http}]}]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: app}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-ingress, namespace: app}
spec: {podSelector: {}, policyTypes: [Ingress]}
"""


def ok(result: Any) -> str:
    assert result.returncode == 0, result.stderr
    return str(result.stdout)


def test_version_is_the_emulated_minor(emulator: RunningEmulator) -> None:
    server = yaml.safe_load(ok(emulator.kubectl("version", "-o", "yaml")))["serverVersion"]
    assert (server["major"], server["minor"]) == ("1", "33")


def test_apply_is_idempotent_and_validation_is_left_to_the_server(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    manifest = tmp_path / "app.yaml"
    manifest.write_text(MANIFEST)
    first = ok(emulator.kubectl("apply", "-f", str(manifest)))
    assert "deployment.apps/web created" in first
    assert "networkpolicy.networking.k8s.io/deny-ingress created" in first
    second = ok(emulator.kubectl("apply", "-f", str(manifest)))
    assert second.count("unchanged") == 6
    manifest.write_text(MANIFEST.replace("LEVEL: debug", "LEVEL: info"))
    assert "configmap/settings configured" in ok(emulator.kubectl("apply", "-f", str(manifest)))
    data = ok(
        emulator.kubectl("get", "cm", "settings", "-n", "app", "-o", "jsonpath={.data.LEVEL}")
    )
    assert data == "info"
    labels = ok(emulator.kubectl("get", "ns", "app", "-o", "jsonpath={.metadata.labels}"))
    assert '"kubernetes.io/metadata.name":"app"' in labels


def test_apply_kustomization(emulator: RunningEmulator, tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text(
        "namespace: kust\nresources: [ns.yaml, cm.yaml]\nlabels:\n- pairs: {team: blue}\n"
    )
    (tmp_path / "ns.yaml").write_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: kust}\n")
    (tmp_path / "cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: k}\ndata: {x: y}\n"
    )
    ok(emulator.kubectl("apply", "-k", str(tmp_path)))
    names = ok(emulator.kubectl("get", "cm", "-n", "kust", "-l", "team=blue", "-o", "name"))
    assert names.split() == ["configmap/k"]


def test_create_commands_send_protobuf(emulator: RunningEmulator) -> None:
    ok(emulator.kubectl("create", "namespace", "proto"))
    ok(emulator.kubectl("create", "configmap", "c", "-n", "proto", "--from-literal=a=b"))
    ok(emulator.kubectl("create", "secret", "generic", "s", "-n", "proto", "--from-literal=k=v"))
    ok(emulator.kubectl("create", "serviceaccount", "robot", "-n", "proto"))
    ok(
        emulator.kubectl(
            "create", "role", "reader", "-n", "proto", "--verb=get,list", "--resource=pods,pods/log"
        )
    )
    ok(
        emulator.kubectl(
            "create",
            "rolebinding",
            "reader",
            "-n",
            "proto",
            "--role=reader",
            "--serviceaccount=proto:robot",
        )
    )
    cm = yaml.safe_load(ok(emulator.kubectl("get", "cm", "c", "-n", "proto", "-o", "yaml")))
    assert cm["data"] == {"a": "b"}
    secret = yaml.safe_load(ok(emulator.kubectl("get", "secret", "s", "-n", "proto", "-o", "yaml")))
    assert secret["data"] == {"k": "dg=="} and secret["type"] == "Opaque"
    role = yaml.safe_load(
        ok(emulator.kubectl("get", "role", "reader", "-n", "proto", "-o", "yaml"))
    )
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": ["get", "list"]}
    ]
    binding = yaml.safe_load(
        ok(emulator.kubectl("get", "rolebinding", "reader", "-n", "proto", "-o", "yaml"))
    )
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "robot", "namespace": "proto"}
    ]
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "reader",
    }
    assert emulator.request_counts()[("create", "rolebindings")] >= 1


def test_run_creates_a_pod(emulator: RunningEmulator) -> None:
    ok(emulator.kubectl("create", "namespace", "runs"))
    ok(
        emulator.kubectl(
            "run",
            "job",
            "-n",
            "runs",
            "--image=busybox:1.36",
            "--restart=Never",
            "--env=GREETING=hi",
            "--labels=team=a",
            "--command",
            "--",
            "sh",
            "-c",
            "echo hi",
        )
    )
    pod = yaml.safe_load(ok(emulator.kubectl("get", "pod", "job", "-n", "runs", "-o", "yaml")))
    container = pod["spec"]["containers"][0]
    assert container["command"] == ["sh", "-c", "echo hi"]
    assert container["env"] == [{"name": "GREETING", "value": "hi"}]
    assert container["image"] == "busybox:1.36"
    assert pod["spec"]["restartPolicy"] == "Never"
    assert pod["metadata"]["labels"] == {"team": "a"}
    assert pod["status"]["phase"] == "Pending"


def test_auth_can_i_as_serviceaccount(emulator: RunningEmulator, tmp_path: Path) -> None:
    rbac = textwrap.dedent(
        """
        apiVersion: v1
        kind: Namespace
        metadata: {name: hodei-workers}
        ---
        apiVersion: rbac.authorization.k8s.io/v1
        kind: Role
        metadata: {name: hodei-provider, namespace: hodei-workers}
        rules:
        - {apiGroups: [""], resources: [pods], verbs: [create, delete, get, list, watch]}
        - {apiGroups: [""], resources: [pods/log], verbs: [get]}
        ---
        apiVersion: rbac.authorization.k8s.io/v1
        kind: RoleBinding
        metadata: {name: hodei-provider, namespace: hodei-workers}
        roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: hodei-provider}
        subjects:
        - {kind: ServiceAccount, name: hodei-control-plane, namespace: hodei-system}
        """
    )
    path = tmp_path / "rbac.yaml"
    path.write_text(rbac)
    ok(emulator.kubectl("apply", "-f", str(path)))

    def can_i(*args: str) -> tuple[int, str]:
        result = emulator.kubectl("auth", "can-i", *args, "-n", "hodei-workers", f"--as={SA}")
        return result.returncode, result.stdout.strip()

    assert can_i("create", "pods") == (0, "yes")
    assert can_i("get", "pods", "--subresource=log") == (0, "yes")
    assert can_i("patch", "pods") == (1, "no")
    assert can_i("list", "secrets") == (1, "no")
    assert (
        emulator.kubectl(
            "auth", "can-i", "list", "pods", "-n", "default", f"--as={SA}"
        ).stdout.strip()
        == "no"
    )


def test_serviceaccount_kubeconfig_is_bound_by_rbac(emulator: RunningEmulator) -> None:
    kubeconfig = emulator.serviceaccount_kubeconfig("hodei-system", "reader-test")
    denied = emulator.kubectl("get", "pods", "-n", "default", kubeconfig=kubeconfig)
    assert denied.returncode == 1
    assert (
        'pods is forbidden: User "system:serviceaccount:hodei-system:reader-test" cannot list '
        'resource "pods" in API group "" in the namespace "default"'
    ) in denied.stderr
    # Discovery and self-review work for any authenticated identity (bootstrap RBAC).
    assert emulator.kubectl("api-resources", kubeconfig=kubeconfig).returncode == 0
    assert (
        emulator.kubectl("auth", "can-i", "get", "pods", kubeconfig=kubeconfig).stdout.strip()
        == "no"
    )


def _ready_pod(emulator: RunningEmulator, namespace: str, name: str) -> None:
    ok(emulator.kubectl("run", name, "-n", namespace, "--image=busybox", "--restart=Never"))
    status = {
        "phase": "Running",
        "containerStatuses": [
            {
                "name": name,
                "ready": True,
                "restartCount": 0,
                "image": "busybox",
                "imageID": "",
                "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}},
            }
        ],
    }
    emulator.call(emulator.store.update_pod_status, namespace, name, status)


def test_get_with_selectors_and_logs(emulator: RunningEmulator) -> None:
    ok(emulator.kubectl("create", "namespace", "logs"))
    _ready_pod(emulator, "logs", "talker")
    ok(emulator.kubectl("run", "idle", "-n", "logs", "--image=busybox", "--restart=Never"))
    emulator.call(emulator.store.append_pod_log, "logs", "talker", "talker", b"one\ntwo\nthree\n")
    running = ok(
        emulator.kubectl(
            "get", "pods", "-n", "logs", "--field-selector=status.phase=Running", "-o", "name"
        )
    )
    assert running.split() == ["pod/talker"]
    labelled = ok(
        emulator.kubectl("get", "pods", "-n", "logs", "-l", "run in (idle)", "-o", "name")
    )
    assert labelled.split() == ["pod/idle"]
    table = ok(emulator.kubectl("get", "pods", "-n", "logs"))
    assert table.splitlines()[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert ok(emulator.kubectl("logs", "talker", "-n", "logs")) == "one\ntwo\nthree\n"
    assert ok(emulator.kubectl("logs", "talker", "-n", "logs", "--tail=1")) == "three\n"
    stamped = ok(emulator.kubectl("logs", "talker", "-n", "logs", "--timestamps")).splitlines()
    assert stamped[0].endswith("Z one") and stamped[0][:4].isdigit()


def test_logs_follow_ends_when_the_container_terminates(emulator: RunningEmulator) -> None:
    ok(emulator.kubectl("create", "namespace", "follow"))
    _ready_pod(emulator, "follow", "f")
    emulator.call(emulator.store.append_pod_log, "follow", "f", "f", b"early\n")

    follower = emulator.kubectl_process("logs", "-f", "f", "-n", "follow")
    assert follower.stdout is not None
    assert follower.stdout.readline() == "early\n"  # following: what comes next is live
    emulator.call(emulator.store.append_pod_log, "follow", "f", "f", b"late\n")
    terminated = {
        "name": "f",
        "ready": False,
        "restartCount": 0,
        "image": "busybox",
        "imageID": "",
        "state": {"terminated": {"exitCode": 0, "reason": "Completed"}},
    }
    emulator.call(
        emulator.store.update_pod_status,
        "follow",
        "f",
        {"phase": "Succeeded", "containerStatuses": [terminated]},
    )
    rest, errors = follower.communicate(timeout=30)
    assert follower.returncode == 0, errors
    assert rest == "late\n"


def test_get_watch_shows_changes_until_the_request_timeout(emulator: RunningEmulator) -> None:
    ok(emulator.kubectl("create", "namespace", "watching"))
    ok(emulator.kubectl("run", "first", "-n", "watching", "--image=busybox"))
    watcher = emulator.kubectl_process(
        "get", "pods", "-n", "watching", "-w", "--request-timeout=2s"
    )
    assert watcher.stdout is not None
    assert watcher.stdout.readline().split()[0] == "NAME"
    assert watcher.stdout.readline().split()[0] == "first"  # listed: the watch follows now
    ok(emulator.kubectl("run", "second", "-n", "watching", "--image=busybox"))
    rest, errors = watcher.communicate(timeout=30)
    names = [line.split()[0] for line in rest.splitlines()]
    assert "second" in names, errors


def test_delete_and_cluster_info(emulator: RunningEmulator) -> None:
    ok(emulator.kubectl("create", "namespace", "doomed"))
    ok(emulator.kubectl("create", "configmap", "c", "-n", "doomed"))
    assert 'configmap "c" deleted' in ok(emulator.kubectl("delete", "cm", "c", "-n", "doomed"))
    missing = emulator.kubectl("get", "cm", "c", "-n", "doomed")
    assert missing.returncode == 1
    assert 'configmaps "c" not found' in missing.stderr
    assert 'namespace "doomed" deleted' in ok(emulator.kubectl("delete", "namespace", "doomed"))
    assert emulator.kubectl("get", "namespace", "doomed").returncode == 1
    info = ok(emulator.kubectl("cluster-info"))
    assert f"Kubernetes control plane is running at {emulator.url}" in info


def test_deployment_create_and_scale(emulator: RunningEmulator) -> None:
    ok(emulator.kubectl("create", "namespace", "deploys"))
    ok(
        emulator.kubectl(
            "create", "deployment", "web", "-n", "deploys", "--image=nginx:1", "--replicas=3"
        )
    )
    shape = "jsonpath={.spec.replicas} {.spec.template.spec.containers[0].image}"
    assert ok(emulator.kubectl("get", "deploy", "web", "-n", "deploys", "-o", shape)) == "3 nginx:1"
    ok(emulator.kubectl("scale", "deployment", "web", "-n", "deploys", "--replicas=1"))
    replicas = ok(
        emulator.kubectl("get", "deploy", "web", "-n", "deploys", "-o", "jsonpath={.spec.replicas}")
    )
    assert replicas == "1"


def test_create_token_authenticates_as_the_serviceaccount(emulator: RunningEmulator) -> None:
    ok(emulator.kubectl("create", "namespace", "tokens"))
    ok(emulator.kubectl("create", "serviceaccount", "bot", "-n", "tokens"))
    token = ok(emulator.kubectl("create", "token", "bot", "-n", "tokens")).strip()
    whoami = ok(emulator.kubectl("auth", "whoami", "--token", token, "-o", "yaml"))
    user = yaml.safe_load(whoami)["status"]["userInfo"]
    assert user["username"] == "system:serviceaccount:tokens:bot"
    assert "system:serviceaccounts:tokens" in user["groups"]
    missing = emulator.kubectl("create", "token", "ghost", "-n", "tokens")
    assert missing.returncode == 1 and 'serviceaccounts "ghost" not found' in missing.stderr


def test_apply_rejects_unknown_fields_like_the_server(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    manifest = tmp_path / "typo.yaml"
    manifest.write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: typo, namespace: default}\n"
        "dataa: {a: b}\n"
    )
    refused = emulator.kubectl("apply", "-f", str(manifest))
    assert refused.returncode == 1
    assert 'strict decoding error: unknown field "dataa"' in refused.stderr


def test_auth_can_i_list_uses_selfsubjectrulesreview(emulator: RunningEmulator) -> None:
    listing = ok(
        emulator.kubectl(
            "auth", "can-i", "--list", "-n", "default", "--as=system:serviceaccount:default:nobody"
        )
    )
    lines = listing.splitlines()
    assert lines[0].split()[:2] == ["Resources", "Non-Resource"]
    assert any(line.startswith("selfsubjectaccessreviews.authorization.k8s.io") for line in lines)
    assert not any(line.startswith("pods ") for line in lines)
