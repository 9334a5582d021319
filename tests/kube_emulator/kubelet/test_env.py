"""Environment resolution, including the kubelet's CreateContainerConfigError messages."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

import pytest

from kube_emulator.kubelet.env import ConfigError, EnvContext, container_env, expand
from kube_emulator.kubelet.resources import Requests


class Objects:
    def __init__(self, configmaps: dict[str, Any], secrets: dict[str, Any]) -> None:
        self.configmaps = configmaps
        self.secrets = secrets

    def get_configmap(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        return self.configmaps.get(f"{namespace}/{name}")

    def get_secret(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        return self.secrets.get(f"{namespace}/{name}")


OBJECTS = Objects(
    {"ns/settings": {"data": {"LEVEL": "debug", "MODE": "fast"}}},
    {"ns/creds": {"data": {"TOKEN": base64.b64encode(b"s3cret").decode()}}},
)
POD = {
    "metadata": {"name": "p", "namespace": "ns", "uid": "u-1", "labels": {"app": "x"}},
    "spec": {"nodeName": "emulator-node"},
}
CONTEXT = EnvContext(pod=POD, lookup=OBJECTS, node_allocatable=Requests(4000, 8 * 2**30))


def env_of(**container: Any) -> dict[str, str]:
    return container_env(container, CONTEXT)


def test_values_and_expansion() -> None:
    env = env_of(
        env=[
            {"name": "A", "value": "1"},
            {"name": "B", "value": "$(A)-$(MISSING)-$$(A)"},
        ]
    )
    assert env == {"A": "1", "B": "1-$(MISSING)-$(A)"}
    assert expand("x $(A) $$ y", {"A": "a"}) == "x a $ y"


def test_value_from_configmap_secret_and_fields() -> None:
    env = env_of(
        env=[
            {"name": "L", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "LEVEL"}}},
            {"name": "T", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "TOKEN"}}},
            {"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
            {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
            {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
        ]
    )
    assert env == {
        "L": "debug",
        "T": "s3cret",
        "N": "p",
        "APP": "x",
        "NODE": "emulator-node",
        "CPU": "4",
    }


def test_env_from_with_prefix_then_env_overrides() -> None:
    env = env_of(
        envFrom=[{"configMapRef": {"name": "settings"}, "prefix": "CFG_"}],
        env=[{"name": "CFG_MODE", "value": "slow"}],
    )
    assert env == {"CFG_LEVEL": "debug", "CFG_MODE": "slow"}


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ({"configMapKeyRef": {"name": "nope", "key": "K"}}, 'configmap "nope" not found'),
        ({"secretKeyRef": {"name": "nope", "key": "K"}}, 'secret "nope" not found'),
        (
            {"configMapKeyRef": {"name": "settings", "key": "K"}},
            "couldn't find key K in ConfigMap ns/settings",
        ),
        ({"secretKeyRef": {"name": "creds", "key": "K"}}, "couldn't find key K in Secret ns/creds"),
    ],
)
def test_missing_objects_and_keys(source: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        env_of(env=[{"name": "X", "valueFrom": source}])
    assert str(caught.value) == message


def test_optional_references_are_skipped() -> None:
    env = env_of(
        env=[
            {
                "name": "X",
                "valueFrom": {"configMapKeyRef": {"name": "nope", "key": "K", "optional": True}},
            },
            {
                "name": "Y",
                "valueFrom": {"secretKeyRef": {"name": "creds", "key": "K", "optional": True}},
            },
        ],
        envFrom=[{"secretRef": {"name": "nope", "optional": True}}],
    )
    assert env == {}
