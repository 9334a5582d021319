"""A container's environment from its pod spec, resolved the way the kubelet does it.

``envFrom`` first, then ``env`` in order (later names win), each value expanded for
``$(NAME)`` references to variables defined before it; ``valueFrom`` reads ConfigMaps,
Secrets, the pod's own fields and its resources. A missing object or key that is not
optional stops the container from being created: the kubelet reports it as waiting with
reason ``CreateContainerConfigError`` and the messages below, and retries. Pure: the
objects are looked up through the :class:`ObjectLookup` given.
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from hodei.domain.quantities import QuantityError, parse_quantity
from kube_emulator.kubelet.resources import Requests

CREATE_CONTAINER_CONFIG_ERROR = "CreateContainerConfigError"


class ObjectLookup(Protocol):
    """Reads ConfigMaps and Secrets (``None`` when absent)."""

    def get_configmap(self, namespace: str, name: str) -> Mapping[str, Any] | None: ...

    def get_secret(self, namespace: str, name: str) -> Mapping[str, Any] | None: ...


class ConfigError(Exception):
    """The container cannot be configured; ``str()`` is the kubelet's message."""


@dataclass(frozen=True)
class EnvContext:
    """What ``valueFrom`` may read besides ConfigMaps and Secrets."""

    pod: Mapping[str, Any]
    lookup: ObjectLookup
    node_allocatable: Requests
    host_ip: str = "127.0.0.1"
    pod_ip: str = "127.0.0.1"


_REFERENCE = re.compile(r"\$\$|\$\(([^)]*)\)")


def expand(text: str, variables: Mapping[str, str]) -> str:
    """Kubernetes ``$(VAR)`` expansion: ``$$`` escapes, unknown references stay verbatim."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return variables.get(name, match.group(0))

    return _REFERENCE.sub(replace, text)


def container_env(container: Mapping[str, Any], context: EnvContext) -> dict[str, str]:
    """The environment the container starts with; raises :class:`ConfigError`."""
    namespace = (context.pod.get("metadata") or {}).get("namespace", "default")
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        env.update(_env_from(source, namespace, context.lookup))
    for var in container.get("env") or []:
        name = var["name"]
        if "valueFrom" in var:
            value = _value_from(var["valueFrom"], container, context)
            if value is None:
                continue
            env[name] = value
        else:
            env[name] = expand(str(var.get("value", "")), env)
    return env


def _env_from(source: Mapping[str, Any], namespace: str, lookup: ObjectLookup) -> dict[str, str]:
    prefix = source.get("prefix", "")
    if "configMapRef" in source:
        ref = source["configMapRef"]
        data = _configmap_data(lookup, namespace, ref["name"], bool(ref.get("optional")))
    else:
        ref = source["secretRef"]
        data = _secret_data(lookup, namespace, ref["name"], bool(ref.get("optional")))
    return {f"{prefix}{key}": value for key, value in (data or {}).items()}


def _configmap_data(
    lookup: ObjectLookup, namespace: str, name: str, optional: bool
) -> dict[str, str] | None:
    obj = lookup.get_configmap(namespace, name)
    if obj is None:
        if optional:
            return None
        raise ConfigError(f'configmap "{name}" not found')
    return {str(k): str(v) for k, v in (obj.get("data") or {}).items()}


def _secret_data(
    lookup: ObjectLookup, namespace: str, name: str, optional: bool
) -> dict[str, str] | None:
    obj = lookup.get_secret(namespace, name)
    if obj is None:
        if optional:
            return None
        raise ConfigError(f'secret "{name}" not found')
    data = {
        str(k): base64.b64decode(str(v)).decode("utf-8", "replace")
        for k, v in (obj.get("data") or {}).items()
    }
    data.update({str(k): str(v) for k, v in (obj.get("stringData") or {}).items()})
    return data


def _value_from(
    source: Mapping[str, Any], container: Mapping[str, Any], context: EnvContext
) -> str | None:
    namespace = (context.pod.get("metadata") or {}).get("namespace", "default")
    if "configMapKeyRef" in source:
        return _key_ref(source["configMapKeyRef"], "ConfigMap", namespace, context.lookup)
    if "secretKeyRef" in source:
        return _key_ref(source["secretKeyRef"], "Secret", namespace, context.lookup)
    if "fieldRef" in source:
        return _field_ref(source["fieldRef"]["fieldPath"], context)
    if "resourceFieldRef" in source:
        return _resource_ref(source["resourceFieldRef"], container, context)
    return None


def _key_ref(ref: Mapping[str, Any], kind: str, namespace: str, lookup: ObjectLookup) -> str | None:
    optional = bool(ref.get("optional"))
    name = ref["name"]
    if kind == "ConfigMap":
        data = _configmap_data(lookup, namespace, name, optional)
    else:
        data = _secret_data(lookup, namespace, name, optional)
    if data is None:
        return None
    key = ref["key"]
    if key not in data:
        if optional:
            return None
        raise ConfigError(f"couldn't find key {key} in {kind} {namespace}/{name}")
    return data[key]


_SUBSCRIPT = re.compile(r"^metadata\.(labels|annotations)\['(.+)'\]$")


def _field_ref(path: str, context: EnvContext) -> str:
    metadata = context.pod.get("metadata") or {}
    spec = context.pod.get("spec") or {}
    simple = {
        "metadata.name": metadata.get("name", ""),
        "metadata.namespace": metadata.get("namespace", "default"),
        "metadata.uid": metadata.get("uid", ""),
        "spec.nodeName": spec.get("nodeName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName", "default"),
        "status.hostIP": context.host_ip,
        "status.hostIPs": context.host_ip,
        "status.podIP": context.pod_ip,
        "status.podIPs": context.pod_ip,
    }
    if path in simple:
        return str(simple[path])
    match = _SUBSCRIPT.match(path)
    if match:
        return str((metadata.get(match.group(1)) or {}).get(match.group(2), ""))
    raise ConfigError(f"unsupported fieldPath: {path}")


def _resource_ref(ref: Mapping[str, Any], container: Mapping[str, Any], context: EnvContext) -> str:
    kind, _, resource = str(ref["resource"]).partition(".")
    resources = (container.get("resources") or {}).get(kind) or {}
    divisor = _decimal(ref.get("divisor", "1"))
    if resource in resources:
        value = _decimal(str(resources[resource]))
    elif resource == "cpu" and kind == "limits":
        value = _decimal(f"{context.node_allocatable.cpu_millis}m")
    elif resource == "memory" and kind == "limits":
        value = _decimal(str(context.node_allocatable.memory_bytes))
    else:
        value = 0.0
    # The kubelet rounds up to the next whole divisor, so a 250m limit reads as "1" core.
    return str(math.ceil(value / divisor)) if divisor else "0"


def _decimal(text: str) -> float:
    try:
        return float(parse_quantity(str(text)))
    except QuantityError:
        return 0.0
