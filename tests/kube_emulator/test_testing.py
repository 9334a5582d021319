"""The in-process handle and fixtures other tests build on: ``kube_emulator.testing`` starts
the emulator on a free loopback port, serving HTTPS with the kubeconfig files written."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from kubernetes_asyncio import client

from kube_emulator.testing import RunningEmulator
from tests.fixtures.emulator import EmulatorFactory

from .conftest import api_client_for


def test_fixture_serves_https_with_admin_kubeconfig(kube_emulator: RunningEmulator) -> None:
    assert kube_emulator.url.startswith("https://127.0.0.1:")
    config = yaml.safe_load(kube_emulator.admin_kubeconfig.read_text())
    assert config["clusters"][0]["cluster"]["server"] == kube_emulator.url
    assert config["clusters"][0]["cluster"]["certificate-authority-data"]
    assert kube_emulator.kubectl("get", "ns", "default").returncode == 0


def test_apply_manifest_creates_then_updates(
    kube_emulator: RunningEmulator, tmp_path: Path
) -> None:
    manifest = tmp_path / "objects.yaml"
    manifest.write_text(
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: applied}\n---\n"
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg, namespace: applied}\n"
        "data: {k: one}\n"
    )
    kube_emulator.apply_manifest(manifest)
    kube_emulator.apply_manifest(manifest.with_name("objects.yaml"))  # idempotent
    manifest.write_text(manifest.read_text().replace("one", "two"))
    kube_emulator.apply_manifest(manifest)
    got = kube_emulator.kubectl("get", "cm", "cfg", "-n", "applied", "-o", "jsonpath={.data.k}")
    assert got.stdout == "two"


def test_request_counts_and_reset(kube_emulator: RunningEmulator) -> None:
    kube_emulator.kubectl("get", "pods", "-n", "default", check=True)
    assert kube_emulator.request_counts()[("list", "pods")] == 1
    kube_emulator.reset_request_counts()
    assert kube_emulator.request_counts() == {}


async def test_factory_with_serviceaccounts(kube_emulator_factory: EmulatorFactory) -> None:
    emulator = kube_emulator_factory(serviceaccounts=(("hodei-system", "hodei-control-plane"),))
    other = kube_emulator_factory()
    assert emulator.url != other.url
    path = emulator.serviceaccount_kubeconfig("hodei-system", "hodei-control-plane")
    assert path.exists()
    async with await api_client_for(path) as api:
        with pytest.raises(client.exceptions.ApiException) as denied:
            await client.CoreV1Api(api).list_namespaced_pod("hodei-workers")
        assert denied.value.status == 403
        review = await client.AuthorizationV1Api(api).create_self_subject_access_review(
            {
                "spec": {
                    "resourceAttributes": {
                        "verb": "create",
                        "resource": "pods",
                        "namespace": "hodei-workers",
                    }
                }
            }
        )
        assert review.status.allowed is False


def test_kubernetes_version_is_configurable(kube_emulator_factory: EmulatorFactory) -> None:
    emulator = kube_emulator_factory(kubernetes_version="1.31")
    server = yaml.safe_load(emulator.kubectl("version", "-o", "yaml").stdout)["serverVersion"]
    assert server["minor"] == "31"
