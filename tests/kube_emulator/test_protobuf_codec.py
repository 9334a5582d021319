"""Decoding Kubernetes protobuf bodies (the bodies below were sent by kubectl 1.33)."""

from __future__ import annotations

import base64

import pytest

from kube_emulator._proto import core_pb2, runtime_pb2
from kube_emulator.protobuf_codec import MAGIC, ProtobufError, decode_object

# kubectl create secret generic s --from-literal=k=v
SECRET = "azhzAAoMCgJ2MRIGU2VjcmV0Eh0KEQoBcxIAGgAiACoAMgA4AEIAEgYKAWsSAXYaABoAIgA="
# kubectl auth can-i get pods --subresource=log -n ns1
SSAR = (
    "azhzAAoyChdhdXRob3JpemF0aW9uLms4cy5pby92MRIXU2VsZlN1YmplY3RBY2Nlc3NSZXZpZXcSOwoQCgASABoAIgAq"
    "ADIAOABCABIdChsKA25zMRIDZ2V0GgAiACoEcG9kczIDbG9nOgAaCAgAEgAaACAAGgAiAA=="
)


def test_secret_from_kubectl() -> None:
    assert decode_object(base64.b64decode(SECRET)) == {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s"},
        "data": {"k": "dg=="},  # bytes come out base64-encoded, as in JSON
    }


def test_selfsubjectaccessreview_from_kubectl() -> None:
    review = decode_object(base64.b64decode(SSAR))
    assert review["kind"] == "SelfSubjectAccessReview"
    assert review["apiVersion"] == "authorization.k8s.io/v1"
    assert review["spec"] == {
        "resourceAttributes": {
            "namespace": "ns1",
            "verb": "get",
            "resource": "pods",
            "subresource": "log",
        }
    }


def envelope(api_version: str, kind: str, raw: bytes) -> bytes:
    unknown = runtime_pb2.Unknown(raw=raw)
    unknown.typeMeta.apiVersion = api_version
    unknown.typeMeta.kind = kind
    return bytes(MAGIC + unknown.SerializeToString())


def test_pod_scalars_quantities_and_pointer_zeros() -> None:
    pod = core_pb2.Pod()
    pod.metadata.name = "p"
    pod.metadata.labels["run"] = "p"
    pod.metadata.creationTimestamp.seconds = 0  # zero time: omitted like JSON's null
    container = pod.spec.containers.add(name="c", image="busybox", stdin=False)
    container.command.extend(["sh", "-c", "true"])
    container.resources.limits["memory"].string = "64Mi"
    container.ports.add(containerPort=80, protocol="TCP")
    pod.spec.terminationGracePeriodSeconds = 0  # a pointer field: zero is meaningful
    pod.spec.restartPolicy = "Never"
    decoded = decode_object(envelope("v1", "Pod", pod.SerializeToString()))
    assert decoded["metadata"] == {"name": "p", "labels": {"run": "p"}}
    assert decoded["spec"] == {
        "containers": [
            {
                "name": "c",
                "image": "busybox",
                "command": ["sh", "-c", "true"],
                "ports": [{"containerPort": 80, "protocol": "TCP"}],
                "resources": {"limits": {"memory": "64Mi"}},
            }
        ],
        "restartPolicy": "Never",
        "terminationGracePeriodSeconds": 0,
    }


@pytest.mark.parametrize(
    "body",
    [b"{}", MAGIC + b"\xff\xff", envelope("example.com/v1", "Widget", b"")],
)
def test_undecodable_bodies(body: bytes) -> None:
    with pytest.raises(ProtobufError):
        decode_object(body)
