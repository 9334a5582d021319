"""Pod Security admission in the emulator, through the real kubectl: a namespace enforcing
"restricted" refuses a pod that breaks it (dry runs included) and admits one that keeps it."""

from __future__ import annotations

import json
from collections.abc import Mapping

import pytest

from kube_emulator.testing import RunningEmulator

pytestmark = pytest.mark.slow

RESTRICTED_CONTAINER = {
    "name": "c",
    "image": "alpine",
    "command": ["true"],
    "securityContext": {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    },
}


def _namespace(emulator: RunningEmulator, name: str, level: str | None) -> None:
    labels = {"pod-security.kubernetes.io/enforce": level} if level else {}
    body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}
    assert emulator.kubectl("apply", "-f", "-", input=json.dumps(body)).returncode == 0


def _pod(name: str, container: Mapping[str, object]) -> str:
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name},
            "spec": {"containers": [container]},
        }
    )


def test_restricted_namespace_refuses_a_pod_that_breaks_it(kube_emulator: RunningEmulator) -> None:
    _namespace(kube_emulator, "strict", "restricted")
    plain = {"name": "c", "image": "alpine", "command": ["true"]}
    for dry_run in ((), ("--dry-run=server",)):
        refused = kube_emulator.kubectl(
            "create", "-n", "strict", *dry_run, "-f", "-", input=_pod("plain", plain)
        )
        assert refused.returncode != 0
        assert 'pods "plain" is forbidden: violates PodSecurity "restricted:latest": ' in (
            refused.stderr
        )
        assert "allowPrivilegeEscalation != false: container c" in refused.stderr
    admitted = kube_emulator.kubectl(
        "create", "-n", "strict", "-f", "-", input=_pod("good", RESTRICTED_CONTAINER)
    )
    assert admitted.returncode == 0, admitted.stderr


def test_other_namespaces_admit_any_pod(kube_emulator: RunningEmulator) -> None:
    _namespace(kube_emulator, "lenient", "baseline")
    _namespace(kube_emulator, "open", None)
    plain = {"name": "c", "image": "alpine", "command": ["true"]}
    for namespace in ("lenient", "open"):
        created = kube_emulator.kubectl(
            "create", "-n", namespace, "-f", "-", input=_pod("plain", plain)
        )
        assert created.returncode == 0, created.stderr
