"""Server-side printing: ``meta.k8s.io/v1 Table`` responses for ``kubectl get``.

kubectl asks for ``as=Table`` and prints the columns the server chose, so pods show
READY/STATUS/RESTARTS the way a real cluster prints them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from .meta import parse_rfc3339

Obj = dict[str, Any]
Column = tuple[str, str, int, Callable[[Obj], Any]]  # name, type, priority, cell


def wants_table(accept: str) -> bool:
    """Whether the Accept header asks for a Table."""
    return "as=Table" in accept


def human_duration(seconds: float) -> str:
    """The apiserver's short age format (``5s``, ``3m``, ``2h5m``, ``4d``)."""
    seconds = max(int(seconds), 0)
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        rest = seconds % 60
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h{rest}m" if rest else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    return f"{hours // 24}d"


def _age(obj: Obj) -> str:
    created = obj.get("metadata", {}).get("creationTimestamp")
    return human_duration(time.time() - parse_rfc3339(created)) if created else "<unknown>"


def _pod_status(pod: Obj) -> str:
    if pod["metadata"].get("deletionTimestamp"):
        return "Terminating"
    status = pod.get("status") or {}
    reason = status.get("reason") or status.get("phase") or "Pending"
    for container in status.get("containerStatuses") or []:
        state = container.get("state") or {}
        if state.get("waiting", {}).get("reason"):
            reason = state["waiting"]["reason"]
        elif state.get("terminated"):
            terminated = state["terminated"]
            reason = terminated.get("reason") or f"ExitCode:{terminated.get('exitCode')}"
    return str(reason)


def _pod_ready(pod: Obj) -> str:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    total = len((pod.get("spec") or {}).get("containers") or [])
    return f"{sum(1 for s in statuses if s.get('ready'))}/{total}"


def _restarts(pod: Obj) -> int:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return sum(int(s.get("restartCount", 0)) for s in statuses)


def _node_status(node: Obj) -> str:
    conditions = (node.get("status") or {}).get("conditions") or []
    ready = next((c for c in conditions if c.get("type") == "Ready"), None)
    text = "Ready" if ready and ready.get("status") == "True" else "NotReady"
    if ready is None:
        text = "Unknown"
    if (node.get("spec") or {}).get("unschedulable"):
        text += ",SchedulingDisabled"
    return text


def _node_roles(node: Obj) -> str:
    prefix = "node-role.kubernetes.io/"
    labels = node["metadata"].get("labels") or {}
    roles = sorted(key[len(prefix) :] for key in labels if key.startswith(prefix))
    return ",".join(roles) or "<none>"


def _node_info(field: str) -> Callable[[Obj], Any]:
    return lambda node: ((node.get("status") or {}).get("nodeInfo") or {}).get(field, "")


def _internal_ip(node: Obj) -> str:
    for address in (node.get("status") or {}).get("addresses") or []:
        if address.get("type") == "InternalIP":
            return str(address.get("address"))
    return "<none>"


def _last_seen(event: Obj) -> str:
    stamp = (
        event.get("lastTimestamp")
        or event.get("eventTime")
        or event["metadata"].get("creationTimestamp")
    )
    return human_duration(time.time() - parse_rfc3339(stamp)) if stamp else "<unknown>"


def _involved(event: Obj) -> str:
    ref = event.get("involvedObject") or {}
    return f"{str(ref.get('kind', '')).lower()}/{ref.get('name', '')}"


def _role_ref(binding: Obj) -> str:
    ref = binding.get("roleRef") or {}
    return f"{ref.get('kind', '')}/{ref.get('name', '')}"


def _pod_selector(policy: Obj) -> str:
    selector = (policy.get("spec") or {}).get("podSelector") or {}
    labels = selector.get("matchLabels") or {}
    text = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
    return text or "<none>"


def _status(deployment: Obj, field: str) -> int:
    return int((deployment.get("status") or {}).get(field, 0))


def _replicas(deployment: Obj) -> int:
    return int((deployment.get("spec") or {}).get("replicas", 1))


_NAME: Column = ("Name", "string", 0, lambda o: o["metadata"]["name"])
_AGE: Column = ("Age", "string", 0, _age)
COLUMNS: dict[str, list[Column]] = {
    "pods": [
        _NAME,
        ("Ready", "string", 0, _pod_ready),
        ("Status", "string", 0, _pod_status),
        ("Restarts", "integer", 0, _restarts),
        _AGE,
        ("IP", "string", 1, lambda o: (o.get("status") or {}).get("podIP", "<none>")),
        ("Node", "string", 1, lambda o: (o.get("spec") or {}).get("nodeName", "<none>")),
    ],
    "nodes": [
        _NAME,
        ("Status", "string", 0, _node_status),
        ("Roles", "string", 0, _node_roles),
        _AGE,
        ("Version", "string", 0, _node_info("kubeletVersion")),
        ("Internal-IP", "string", 1, _internal_ip),
        ("External-IP", "string", 1, lambda o: "<none>"),
        ("OS-Image", "string", 1, _node_info("osImage")),
        ("Kernel-Version", "string", 1, _node_info("kernelVersion")),
        ("Container-Runtime", "string", 1, _node_info("containerRuntimeVersion")),
    ],
    "events": [
        ("Last Seen", "string", 0, _last_seen),
        ("Type", "string", 0, lambda o: o.get("type", "")),
        ("Reason", "string", 0, lambda o: o.get("reason", "")),
        ("Object", "string", 0, _involved),
        ("Message", "string", 0, lambda o: o.get("message", "")),
    ],
    "roles": [_NAME, ("Created At", "date", 0, lambda o: o["metadata"].get("creationTimestamp"))],
    "clusterroles": [
        _NAME,
        ("Created At", "date", 0, lambda o: o["metadata"].get("creationTimestamp")),
    ],
    "rolebindings": [_NAME, ("Role", "string", 0, _role_ref), _AGE],
    "clusterrolebindings": [_NAME, ("Role", "string", 0, _role_ref), _AGE],
    "networkpolicies": [_NAME, ("Pod-Selector", "string", 0, _pod_selector), _AGE],
    "deployments": [
        _NAME,
        ("Ready", "string", 0, lambda o: f"{_status(o, 'readyReplicas')}/{_replicas(o)}"),
        ("Up-to-date", "integer", 0, lambda o: _status(o, "updatedReplicas")),
        ("Available", "integer", 0, lambda o: _status(o, "availableReplicas")),
        _AGE,
    ],
    "namespaces": [
        _NAME,
        ("Status", "string", 0, lambda o: o.get("status", {}).get("phase")),
        _AGE,
    ],
    "configmaps": [_NAME, ("Data", "integer", 0, lambda o: len(o.get("data") or {})), _AGE],
    "secrets": [
        _NAME,
        ("Type", "string", 0, lambda o: o.get("type", "")),
        ("Data", "integer", 0, lambda o: len(o.get("data") or {})),
        _AGE,
    ],
    "serviceaccounts": [
        _NAME,
        ("Secrets", "integer", 0, lambda o: len(o.get("secrets") or [])),
        _AGE,
    ],
    "services": [
        _NAME,
        ("Type", "string", 0, lambda o: o.get("spec", {}).get("type", "")),
        ("Cluster-IP", "string", 0, lambda o: o.get("spec", {}).get("clusterIP", "")),
        ("External-IP", "string", 0, lambda o: "<none>"),
        (
            "Port(s)",
            "string",
            0,
            lambda o: (
                ",".join(
                    f"{p.get('port')}/{p.get('protocol', 'TCP')}"
                    for p in o.get("spec", {}).get("ports") or []
                )
                or "<none>"
            ),
        ),
        _AGE,
    ],
}


def _partial(obj: Obj) -> Obj:
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj["metadata"],
    }


def table(plural: str, objects: list[Obj], list_meta: Obj, include: str = "Metadata") -> Obj:
    """A Table of ``objects`` (include: Metadata, Object or None, as ``includeObject``)."""
    columns = COLUMNS.get(plural, [_NAME, _AGE])
    rows = []
    for obj in objects:
        row: Obj = {"cells": [cell(obj) for _, _, _, cell in columns]}
        if include == "Object":
            row["object"] = obj
        elif include != "None":
            row["object"] = _partial(obj)
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "columnDefinitions": [
            {
                "name": name,
                "type": kind,
                "format": "name" if name == "Name" else "",
                "description": "",
                "priority": priority,
            }
            for name, kind, priority, _ in columns
        ],
        "rows": rows,
    }
