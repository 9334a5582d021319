"""Just enough OpenAPI v3 for kubectl to hand validation to the server.

``kubectl apply``/``create`` ask ``/openapi/v3`` whether each kind's PATCH operation takes
the ``fieldValidation`` query parameter (``x-kubernetes-group-version-kind`` names the
kind). When it does, kubectl sends ``?fieldValidation=Strict`` and skips client-side
schema validation, so no schemas are needed; documents carry operations only.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from .resources import RESOURCE_TYPES, ResourceType, group_versions

_QUERY_PARAMS = ("dryRun", "fieldManager", "fieldValidation", "force", "pretty")


def _gv_path(group: str, version: str) -> str:
    return f"api/{version}" if not group else f"apis/{group}/{version}"


def _operation(rtype: ResourceType, action: str) -> dict[str, Any]:
    params = [
        {"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": True}}
        for name in _QUERY_PARAMS
    ]
    return {
        "operationId": f"{action}{rtype.kind}",
        "parameters": params,
        "responses": {"200": {"description": "OK"}},
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {
            "group": rtype.group,
            "version": rtype.version,
            "kind": rtype.kind,
        },
    }


def group_version_document(group: str, version: str, kubernetes_version: str) -> dict[str, Any]:
    """The OpenAPI v3 document of one group-version."""
    paths: dict[str, Any] = {}
    for rtype in RESOURCE_TYPES:
        if rtype.group != group or rtype.version != version:
            continue
        base = "/" + _gv_path(group, version)
        scope = f"{base}/namespaces/{{namespace}}" if rtype.namespaced else base
        collection = f"{scope}/{rtype.plural}"
        paths[collection] = {"post": _operation(rtype, "post")}
        if not rtype.create_only:
            paths[collection]["get"] = _operation(rtype, "list")
            paths[f"{collection}/{{name}}"] = {
                "get": _operation(rtype, "get"),
                "put": _operation(rtype, "put"),
                "patch": _operation(rtype, "patch"),
                "delete": _operation(rtype, "delete"),
            }
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": f"v{kubernetes_version}.0"},
        "paths": paths,
        "components": {"schemas": {}},
    }


def _hash(document: dict[str, Any]) -> str:
    return hashlib.sha512(json.dumps(document, sort_keys=True).encode()).hexdigest()[:64].upper()


def root_document(kubernetes_version: str) -> dict[str, Any]:
    """``/openapi/v3``: where each group-version's document lives."""
    paths = {}
    for group, version in group_versions():
        doc = group_version_document(group, version, kubernetes_version)
        url = f"/openapi/v3/{_gv_path(group, version)}?hash={_hash(doc)}"
        paths[_gv_path(group, version)] = {"serverRelativeURL": url}
    return {"paths": paths}


def find_document(path: str, kubernetes_version: str) -> dict[str, Any] | None:
    """The document for ``/openapi/v3/<path>``, or None."""
    for group, version in group_versions():
        if _gv_path(group, version) == path.strip("/"):
            return group_version_document(group, version, kubernetes_version)
    return None
