"""``deployments/scale``, ``serviceaccounts/token`` and ``pods/eviction``: subresources
with their own kinds.

``kubectl scale`` reads and writes an ``autoscaling/v1 Scale``; ``kubectl create token``
posts an ``authentication.k8s.io/v1 TokenRequest`` and receives a bearer token that
authenticates as the ServiceAccount, which the emulator issues from its token table.
``kubectl drain`` (and autoscalers) post a ``policy/v1 Eviction``: the API server marks
the pod with a ``DisruptionTarget`` condition (reason ``EvictionByEvictionAPI``, message
``Eviction API: evicting``), then deletes it gracefully; the answer is a Success Status.
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from .. import errors
from ..codec import PATCH_TYPES, decode, media_type, read_object, respond
from ..meta import clone, rfc3339
from ..patch import PatchError, json_patch, merge_patch, strategic_merge
from ..requestinfo import RequestInfo
from ..resources import ResourceType
from ..selectors import selector_from_match
from ..state import EmulatorState

DEFAULT_TOKEN_SECONDS = 3600


def _selector_text(spec: dict[str, Any]) -> str:
    selector = selector_from_match(spec.get("selector"))
    parts = []
    for req in selector.requirements:
        values = ",".join(sorted(req.values))
        parts.append(f"{req.key}={values}" if req.op == "=" else f"{req.key} {req.op} ({values})")
    return ",".join(parts)


def _scale(deployment: dict[str, Any]) -> dict[str, Any]:
    meta = deployment["metadata"]
    spec = deployment.get("spec") or {}
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            k: meta[k]
            for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
            if k in meta
        },
        "spec": {"replicas": spec.get("replicas", 1)},
        "status": {
            "replicas": (deployment.get("status") or {}).get("replicas", 0),
            "selector": _selector_text(spec),
        },
    }


async def scale(
    request: web.Request, state: EmulatorState, rtype: ResourceType, info: RequestInfo
) -> web.StreamResponse:
    """GET/PUT/PATCH of a Deployment's Scale."""
    deployment = state.store.require(rtype, info.namespace, info.name)
    current = _scale(deployment)
    if info.verb == "get":
        return respond(current)
    if info.verb == "update":
        wanted = await read_object(request)
    elif info.verb == "patch":
        kind = PATCH_TYPES.get(media_type(request))
        if kind is None:
            raise errors.unsupported_media_type(media_type(request))
        body = decode(await request.read(), media_type(request))
        try:
            patcher = {"json": json_patch, "merge": merge_patch}.get(kind, strategic_merge)
            wanted = patcher(current, body)
        except PatchError as exc:
            raise errors.ApiError(422, "Invalid", str(exc)) from exc
    else:
        raise errors.method_not_allowed(info.verb)
    replicas = (wanted.get("spec") or {}).get("replicas")
    if not isinstance(replicas, int) or replicas < 0:
        raise errors.invalid(
            "Scale",
            info.name,
            [
                (
                    "spec.replicas",
                    "FieldValueInvalid",
                    f"Invalid value: {replicas!r}: must be greater than or equal to 0",
                )
            ],
            "autoscaling",
        )
    updated = clone(deployment)
    updated.setdefault("spec", {})["replicas"] = replicas
    if updated != deployment:
        updated["metadata"]["generation"] = deployment["metadata"].get("generation", 1) + 1
    expect = (wanted.get("metadata") or {}).get("resourceVersion")
    stored = state.store.replace(rtype, info.namespace, info.name, updated, expect_rv=expect)
    return respond(_scale(stored))


async def token(
    request: web.Request, state: EmulatorState, rtype: ResourceType, info: RequestInfo
) -> web.StreamResponse:
    """POST serviceaccounts/NAME/token: a bearer token for that ServiceAccount."""
    if info.verb != "create":
        raise errors.method_not_allowed(info.verb)
    assert info.namespace is not None
    state.store.require(rtype, info.namespace, info.name)  # 404 for an unknown account
    body = await read_object(request)
    spec = body.get("spec") or {}
    seconds = int(spec.get("expirationSeconds") or DEFAULT_TOKEN_SECONDS)
    issued = state.authenticator.serviceaccount_token(info.namespace, info.name)
    metadata = {"name": info.name, "namespace": info.namespace, "creationTimestamp": rfc3339()}
    return respond(
        {
            "kind": "TokenRequest",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": metadata,
            "spec": {
                **spec,
                "expirationSeconds": seconds,
                "audiences": spec.get("audiences")
                or ["https://kubernetes.default.svc.cluster.local"],
            },
            "status": {"token": issued, "expirationTimestamp": rfc3339(time.time() + seconds)},
        },
        201,
    )


EVICTION_CONDITION = {
    "type": "DisruptionTarget",
    "status": "True",
    "reason": "EvictionByEvictionAPI",
    "message": "Eviction API: evicting",
}


async def eviction(
    request: web.Request, state: EmulatorState, rtype: ResourceType, info: RequestInfo
) -> web.StreamResponse:
    """POST pods/NAME/eviction: DisruptionTarget condition, then a graceful delete."""
    if info.verb != "create":
        raise errors.method_not_allowed(info.verb)
    assert info.namespace is not None
    pod = state.store.require(rtype, info.namespace, info.name)
    body = await read_object(request)
    options = body.get("deleteOptions") or {}
    grace = options.get("gracePeriodSeconds")
    if not pod["metadata"].get("deletionTimestamp"):
        marked = clone(pod)
        conditions = [
            c
            for c in (marked.setdefault("status", {}).get("conditions") or [])
            if c.get("type") != "DisruptionTarget"
        ]
        conditions.append({**EVICTION_CONDITION, "lastTransitionTime": rfc3339()})
        marked["status"]["conditions"] = conditions
        state.store.replace(rtype, info.namespace, info.name, marked)
        state.store.delete(rtype, info.namespace, info.name, grace=grace)
    return respond(
        {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201},
        201,
    )
