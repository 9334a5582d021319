"""What an operator sees when the provider's identity lacks a right or the namespace is
missing: errors naming verb, resource and namespace, pointing at rbac.yaml / install.sh."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hodei.providers.kubernetes import KubernetesApiError, create_provider

from .helpers import MANIFESTS, running_provider, settings_for, worker_request

CONTROL_PLANE = ("hodei-system", "hodei-control-plane")
STRANGER = ("hodei-system", "stranger")

NO_DELETE_ROLE = """
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: hodei-provider, namespace: hodei-workers}
rules:
  - apiGroups: [""]
    resources: ["pods"]
    verbs: ["create", "get", "list", "watch"]
"""


@pytest.fixture
def emulator(kube_emulator_factory: Any) -> Any:
    running = kube_emulator_factory(serviceaccounts=(CONTROL_PLANE, STRANGER))
    running.apply_manifest(MANIFESTS / "namespace.yaml")
    running.apply_manifest(MANIFESTS / "rbac.yaml")
    return running


async def test_identity_without_rights_stops_start_with_the_fix(emulator: Any) -> None:
    settings = settings_for(Path(emulator.serviceaccount_kubeconfig(*STRANGER)))
    provider = await create_provider(settings, instance="t")
    try:
        health = await provider.health()
        assert not health.ok
        assert "deploy/kubernetes/rbac.yaml" in health.message

        async def ignore(status: object) -> None:
            return None

        with pytest.raises(KubernetesApiError) as info:
            await provider.start(ignore)
    finally:
        await provider.close()
    text = str(info.value)
    assert info.value.status == 403
    assert '"list pods" in namespace "hodei-workers"' in text
    assert "deploy/kubernetes/rbac.yaml" in text


async def test_missing_delete_right_names_the_verb(emulator: Any, tmp_path: Path) -> None:
    role = tmp_path / "role.yaml"
    role.write_text(NO_DELETE_ROLE)
    emulator.apply_manifest(role)
    settings = settings_for(Path(emulator.serviceaccount_kubeconfig(*CONTROL_PLANE)))
    async with running_provider(settings) as (provider, _):
        request = worker_request()
        await provider.create_worker(request)
        with pytest.raises(KubernetesApiError) as info:
            await provider.delete_worker(request.worker_id)
    assert '"delete pods" in namespace "hodei-workers"' in str(info.value)
    assert "deploy/kubernetes/rbac.yaml" in str(info.value)


async def test_missing_namespace_points_at_install_script(kube_emulator: Any) -> None:
    settings = settings_for(Path(kube_emulator.admin_kubeconfig), namespace="not-installed")
    provider = await create_provider(settings, instance="t")

    async def ignore(status: object) -> None:
        return None

    try:
        with pytest.raises(KubernetesApiError) as info:
            await provider.start(ignore)
            await provider.create_worker(worker_request())
    finally:
        await provider.close()
    assert "deploy/kubernetes/install.sh" in str(info.value)
    assert '"not-installed"' in str(info.value)
