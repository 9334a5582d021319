"""Decode Kubernetes protobuf request bodies into JSON-shaped objects.

kubectl sends ``application/vnd.kubernetes.protobuf`` bodies for ``create namespace``,
``create configmap|secret|serviceaccount|role|rolebinding|quota``, ``run`` and ``auth can-i``.
The wire format is the 4-byte magic ``k8s\\0`` and a ``runtime.Unknown`` whose ``raw``
field holds the object, encoded with the messages of the kind's ``generated.proto``.
`_proto/` holds minimal copies of those messages (same field numbers); this module
turns a decoded message into the dict the JSON API would have carried: Go's
``omitempty`` (empty strings and zero times dropped), embedded structs inlined, bytes in
base64, quantities and int-or-strings as scalars.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError, Message

from ._proto import apps_pb2, authentication_pb2, authorization_pb2, core_pb2, rbac_pb2, runtime_pb2

MAGIC = b"k8s\x00"
_EMBEDDED = {"localObjectReference", "volumeSource"}  # Go embedded structs: inline in JSON
# Go pointer fields: present on the wire only when set, so zero/false is meaningful there.
# Every other scalar is always on the wire and JSON's omitempty would drop its zero value.
_POINTERS = {
    "terminationGracePeriodSeconds",
    "activeDeadlineSeconds",
    "priority",
    "deletionGracePeriodSeconds",
    "tolerationSeconds",
    "automountServiceAccountToken",
    "enableServiceLinks",
    "immutable",
    "optional",
    "controller",
    "blockOwnerDeletion",
}

MESSAGES: dict[tuple[str, str], type[Message]] = {
    ("v1", "Namespace"): core_pb2.Namespace,
    ("v1", "ConfigMap"): core_pb2.ConfigMap,
    ("v1", "Secret"): core_pb2.Secret,
    ("v1", "ServiceAccount"): core_pb2.ServiceAccount,
    ("v1", "Pod"): core_pb2.Pod,
    ("v1", "Service"): core_pb2.Service,
    ("v1", "ResourceQuota"): core_pb2.ResourceQuota,
    ("apps/v1", "Deployment"): apps_pb2.Deployment,
    ("authentication.k8s.io/v1", "TokenRequest"): authentication_pb2.TokenRequest,
    ("authentication.k8s.io/v1", "SelfSubjectReview"): authentication_pb2.SelfSubjectReview,
    ("rbac.authorization.k8s.io/v1", "Role"): rbac_pb2.Role,
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): rbac_pb2.ClusterRole,
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): rbac_pb2.RoleBinding,
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): rbac_pb2.ClusterRoleBinding,
    (
        "authorization.k8s.io/v1",
        "SelfSubjectAccessReview",
    ): authorization_pb2.SelfSubjectAccessReview,
    ("authorization.k8s.io/v1", "SubjectAccessReview"): authorization_pb2.SubjectAccessReview,
    ("authorization.k8s.io/v1", "SelfSubjectRulesReview"): authorization_pb2.SelfSubjectRulesReview,
}


class ProtobufError(ValueError):
    """The body is not a Kubernetes protobuf object this emulator can decode."""


def _scalar(field: FieldDescriptor, value: Any) -> Any:
    if field.type == FieldDescriptor.TYPE_BYTES:
        return base64.b64encode(value).decode()
    if field.message_type is not None:
        return _message(value)
    return value


def _special(message: Message) -> tuple[bool, Any]:
    name = message.DESCRIPTOR.name
    if name == "Time":
        seconds = getattr(message, "seconds", 0)
        if not seconds and not getattr(message, "nanos", 0):
            return True, None
        return True, datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if name == "Quantity":
        return True, getattr(message, "string", "")
    if name == "IntOrString":
        if getattr(message, "type", 0) == 1:
            return True, getattr(message, "strVal", "")
        return True, getattr(message, "intVal", 0)
    return False, None


def _message(message: Message) -> Any:
    handled, value = _special(message)
    if handled:
        return value
    result: dict[str, Any] = {}
    for field, raw in message.ListFields():
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            value_field = field.message_type.fields_by_name["value"]
            result[field.name] = {key: _scalar(value_field, item) for key, item in raw.items()}
        elif field.is_repeated:
            result[field.name] = [_scalar(field, item) for item in raw]
        else:
            converted = _scalar(field, raw)
            if converted is None or converted == "":
                continue
            if (
                converted in (0, False)
                and field.message_type is None
                and field.name not in _POINTERS
            ):
                continue
            if field.name in _EMBEDDED and isinstance(converted, dict):
                result.update(converted)
            else:
                result[field.name] = converted
    return result


def decode_object(body: bytes) -> dict[str, Any]:
    """The JSON-shaped object in a protobuf request body."""
    if not body.startswith(MAGIC):
        raise ProtobufError("missing the k8s protobuf magic prefix")
    envelope = runtime_pb2.Unknown()
    try:
        envelope.ParseFromString(body[len(MAGIC) :])
    except DecodeError as exc:
        raise ProtobufError(f"malformed envelope: {exc}") from exc
    api_version, kind = envelope.typeMeta.apiVersion, envelope.typeMeta.kind
    message_type = MESSAGES.get((api_version, kind))
    if message_type is None:
        raise ProtobufError(f"no protobuf decoder for {api_version}/{kind}")
    message = message_type()
    try:
        message.ParseFromString(envelope.raw)
    except DecodeError as exc:
        raise ProtobufError(f"malformed {kind}: {exc}") from exc
    obj = _message(message)
    return {"apiVersion": api_version, "kind": kind, **obj}
