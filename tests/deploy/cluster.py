"""Running install.sh and reading Hodei's objects back, against the Kubernetes API emulator."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from kube_emulator.testing import RunningEmulator
from tests.deploy.manifests import INSTALL_SH

HODEI_NAMESPACES = ("hodei-system", "hodei-workers")
NAMESPACED_KINDS = (
    "serviceaccounts,roles,rolebindings,networkpolicies,configmaps,secrets,"
    "deployments,services,pods"
)
WRITE_VERBS = ("create", "update", "patch", "delete", "deletecollection")
CONTROL_PLANE_USER = "system:serviceaccount:hodei-system:hodei-control-plane"


def run_install(
    emulator: RunningEmulator, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """install.sh with the emulator as kubectl's cluster (private HOME for kubectl's cache)."""
    home = emulator.config.workdir / "install-home"
    home.mkdir(exist_ok=True)
    full_env = {
        **os.environ,
        **_direct_kubectl(),
        "KUBECONFIG": str(emulator.admin_kubeconfig),
        "HOME": str(home),
        **(env or {}),
    }
    return subprocess.run(
        ["bash", str(INSTALL_SH), *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=110,
        check=False,
    )


def _direct_kubectl() -> dict[str, str]:
    """Point install.sh at kubectl 1.33 itself when the kubectl on PATH is a version
    dispatcher (Google Cloud SDK): half the start-up time of each of its many calls."""
    dispatcher = shutil.which("kubectl")
    if dispatcher is None:
        return {}
    direct = Path(dispatcher).resolve().with_name("kubectl.1.33")
    return {"KUBECTL": str(direct)} if direct.is_file() else {}


def kubectl_json(emulator: RunningEmulator, *args: str) -> Any:
    """``kubectl ARGS -o json``, parsed; fails the test when kubectl fails."""
    result = emulator.kubectl(*args, "-o", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def hodei_objects(emulator: RunningEmulator) -> dict[str, str]:
    """``kind/namespace/name`` -> resourceVersion of everything in Hodei's namespaces."""
    found: dict[str, str] = {}
    for ns in kubectl_json(emulator, "get", "namespaces")["items"]:
        if ns["metadata"]["name"] in HODEI_NAMESPACES:
            found[f"Namespace//{ns['metadata']['name']}"] = ns["metadata"]["resourceVersion"]
    for obj in kubectl_json(emulator, "get", NAMESPACED_KINDS, "--all-namespaces")["items"]:
        meta = obj["metadata"]
        if meta.get("namespace") in HODEI_NAMESPACES:
            found[f"{obj['kind']}/{meta['namespace']}/{meta['name']}"] = meta["resourceVersion"]
    return found


def writes(emulator: RunningEmulator) -> dict[tuple[str, str], int]:
    """Requests that changed something since the last reset (access reviews excluded)."""
    return {
        (verb, resource): n
        for (verb, resource), n in emulator.request_counts().items()
        if verb in WRITE_VERBS and not resource.endswith("accessreviews")
    }


def can_i(emulator: RunningEmulator, *args: str) -> str:
    """``kubectl auth can-i ARGS --as=<control plane>``: "yes" or "no"."""
    result = emulator.kubectl("auth", "can-i", *args, f"--as={CONTROL_PLANE_USER}")
    answer = result.stdout.strip()
    assert answer in ("yes", "no"), result.stderr
    return answer


def token_of(emulator: RunningEmulator) -> str:
    """The API token Secret's (base64) token."""
    secret = kubectl_json(emulator, "get", "secret", "hodei-api-token", "-n", "hodei-system")
    token: str = secret["data"]["token"]
    return token
