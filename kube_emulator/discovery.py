"""Discovery documents: /version, /api, /apis and per group-version resource lists.

These are what kubectl's and the clients' RESTMappers read to find out that ``po``
means ``pods`` in ``v1``, which resources are namespaced and which verbs exist. The
emulator answers legacy (unaggregated) discovery with plain ``application/json``;
clients that asked for aggregated discovery fall back to it, as with older servers.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from .resources import GROUPS, RESOURCE_TYPES, ResourceType

_SUBRESOURCE_VERBS = {
    "status": ["get", "patch", "update"],
    "log": ["get"],
    "scale": ["get", "patch", "update"],
    "token": ["create"],
    "eviction": ["create"],
}


def version_info(kubernetes_version: str) -> dict[str, str]:
    """The ``/version`` body for ``major.minor``."""
    major, _, minor = kubernetes_version.partition(".")
    minor = minor.split(".")[0]
    return {
        "major": major,
        "minor": minor,
        "emulationMajor": major,
        "emulationMinor": minor,
        "minCompatibilityMajor": major,
        "minCompatibilityMinor": str(max(int(minor) - 1, 0)),
        "gitVersion": f"v{major}.{minor}.0",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-04-22T00:00:00Z",
        "goVersion": "go1.24.2",
        "compiler": "gc",
        "platform": "linux/amd64",
    }


def api_versions(server_address: str) -> dict[str, Any]:
    """``/api``: the core group's versions."""
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
        ],
    }


def _group(name: str, version: str) -> dict[str, Any]:
    group_version = {"groupVersion": f"{name}/{version}", "version": version}
    return {"name": name, "versions": [group_version], "preferredVersion": group_version}


def api_group_list() -> dict[str, Any]:
    """``/apis``: every non-core group."""
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [_group(g, v) for g, v in GROUPS]}


def api_group(name: str) -> dict[str, Any] | None:
    """``/apis/<group>``."""
    for group, version in GROUPS:
        if group == name:
            return {"kind": "APIGroup", "apiVersion": "v1", **_group(group, version)}
    return None


def _storage_hash(rtype: ResourceType) -> str:
    digest = hashlib.sha256(f"{rtype.api_version}/{rtype.kind}".encode()).digest()
    return base64.b64encode(digest[:8]).decode()


def _entries(rtype: ResourceType) -> list[dict[str, Any]]:
    main: dict[str, Any] = {
        "name": rtype.plural,
        "singularName": rtype.singular,
        "namespaced": rtype.namespaced,
        "kind": rtype.kind,
        "verbs": list(rtype.verbs),
    }
    if rtype.short_names:
        main["shortNames"] = list(rtype.short_names)
    if rtype.categories:
        main["categories"] = list(rtype.categories)
    if not rtype.create_only:
        main["storageVersionHash"] = _storage_hash(rtype)
    entries = [main]
    for sub in rtype.subresources:
        entry: dict[str, Any] = {
            "name": f"{rtype.plural}/{sub}",
            "singularName": "",
            "namespaced": rtype.namespaced,
            "kind": rtype.kind,
            "verbs": _SUBRESOURCE_VERBS[sub],
        }
        if sub == "scale":
            entry.update(group="autoscaling", version="v1", kind="Scale")
        if sub == "token":
            entry.update(group="authentication.k8s.io", version="v1", kind="TokenRequest")
        if sub == "eviction":  # what kubectl drain looks for before it evicts
            entry.update(group="policy", version="v1", kind="Eviction")
        entries.append(entry)
    return entries


def resource_list(group: str, version: str) -> dict[str, Any] | None:
    """``/api/v1`` or ``/apis/<group>/<version>``: the resources served there."""
    types = [r for r in RESOURCE_TYPES if r.group == group and r.version == version]
    if not types:
        return None
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": [entry for rtype in types for entry in _entries(rtype)],
    }
