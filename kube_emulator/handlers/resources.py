"""Resource requests: get, list, create, update, patch, delete, deletecollection.

Each handler does what the apiserver's generic registry does for the verb: decode,
check names and namespaces against the URL, run the kind's admission rules, write to
the store with optimistic concurrency, and answer with the object or a Status.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .. import admission, errors, podsecurity, quota, schemas, selectors, tables
from ..codec import PATCH_TYPES, decode, media_type, read_object, respond, success_status
from ..meta import clone
from ..patch import PatchError, json_patch, merge_patch, strategic_merge
from ..requestinfo import RequestInfo
from ..resources import ResourceType, find, resource_type
from ..state import EmulatorState
from . import listing, podlog, reviews, subresources, watching

_SERVICEACCOUNTS = resource_type("serviceaccounts")
_QUOTAS = resource_type("resourcequotas")
_PODS = resource_type("pods")


def _with_quota_status(state: EmulatorState, obj: dict[str, Any]) -> dict[str, Any]:
    """A ResourceQuota with the status its controller would have written by now."""
    namespace = obj["metadata"].get("namespace")
    filled = clone(obj)
    filled["status"] = quota.status(obj, state.store.list(_PODS, namespace))
    return filled


def _not_found_path() -> errors.ApiError:
    return errors.ApiError(
        404, "NotFound", "the server could not find the requested resource", details={}
    )


def _dry_run(request: web.Request) -> bool:
    return bool(request.query.getall("dryRun", []))


def _selector(request: web.Request, rtype: ResourceType, info: RequestInfo) -> Any:
    field_text = request.query.get("fieldSelector")
    if info.name:  # a watch on one name is a watch with a metadata.name selector
        field_text = ",".join(filter(None, [field_text, f"metadata.name={info.name}"]))
    try:
        return selectors.compile_filter(
            request.query.get("labelSelector"), field_text, rtype.plural
        )
    except selectors.SelectorError as exc:
        raise errors.bad_request(str(exc)) from exc


def _respond_object(
    request: web.Request, rtype: ResourceType, obj: dict[str, Any], status: int = 200
) -> web.Response:
    if tables.wants_table(request.headers.get("Accept", "")):
        meta = {"resourceVersion": obj["metadata"].get("resourceVersion", "")}
        return respond(
            tables.table(rtype.plural, [obj], meta, request.query.get("includeObject", "Metadata")),
            status,
        )
    return respond(obj, status)


async def handle(
    request: web.Request, state: EmulatorState, info: RequestInfo
) -> web.StreamResponse:
    """Dispatch one resource request."""
    rtype = find(info.group, info.version, info.resource)
    if rtype is None or (info.subresource and info.subresource not in rtype.subresources):
        raise _not_found_path()
    if rtype.namespaced and info.namespace is None and info.verb not in ("list", "watch"):
        raise _not_found_path()
    if info.subresource == "log":
        return await podlog.handle(request, state, info)
    if info.subresource == "scale":
        return await subresources.scale(request, state, rtype, info)
    if info.subresource == "token":
        return await subresources.token(request, state, rtype, info)
    if info.subresource == "eviction":
        return await subresources.eviction(request, state, rtype, info)
    if rtype.create_only:
        if info.verb != "create":
            raise errors.method_not_allowed(info.verb)
        return await reviews.handle(request, state, rtype, info)
    if info.subresource and info.verb not in ("get", "update", "patch"):
        raise errors.method_not_allowed(info.verb)
    handler = _HANDLERS.get(info.verb)
    if handler is None or info.verb not in rtype.verbs:
        raise errors.method_not_allowed(info.verb)
    return await handler(request, state, rtype, info)


async def _get(
    request: web.Request, state: EmulatorState, rtype: ResourceType, info: RequestInfo
) -> web.StreamResponse:
    obj = state.store.require(rtype, info.namespace, info.name)
    if rtype.plural == "resourcequotas":
        obj = _with_quota_status(state, obj)
    return _respond_object(request, rtype, obj)


async def _list(
    request: web.Request, state: EmulatorState, rtype: ResourceType, info: RequestInfo
) -> web.StreamResponse:
    predicate = _selector(request, rtype, info)
    try:
        limit = int(request.query.get("limit") or 0)
    except ValueError as exc:
        raise errors.bad_request(f"invalid limit: {exc}") from exc
    objects = state.store.list(rtype, info.namespace)
    if rtype.plural == "resourcequotas":
        objects = [_with_quota_status(state, q) for q in objects]
    items, meta = listing.page(
        objects,
        predicate=predicate,
        limit=limit,
        continue_token=request.query.get("continue"),
        current_rv=state.store.resource_version,
        oldest_rv=state.store.hub.floor,
    )
    if tables.wants_table(request.headers.get("Accept", "")):
        return respond(
            tables.table(rtype.plural, items, meta, request.query.get("includeObject", "Metadata"))
        )
    return respond(listing.list_body(rtype, items, meta))


async def _watch(
    request: web.Request, state: EmulatorState, rtype: ResourceType, info: RequestInfo
) -> web.StreamResponse:
    return await watching.serve(request, state, rtype, info, _selector(request, rtype, info))


def _field_validation(
    request: web.Request, state: EmulatorState, rtype: ResourceType, obj: dict[str, Any]
) -> list[str]:
    """Strict: 400 on unknown fields; Warn: their ``Warning`` header values."""
    mode = request.query.get("fieldValidation", "")
    if mode not in ("Strict", "Warn"):
        return []
    typed = {**obj, "apiVersion": rtype.api_version, "kind": rtype.kind}
    unknown = schemas.unknown_fields(typed, state.kubernetes_version)
    if unknown and mode == "Strict":
        listed = ", ".join(f'unknown field "{field}"' for field in unknown)
        raise errors.bad_request(
            f'{rtype.kind} in version "{rtype.version}" cannot be handled as a {rtype.kind}: '
            f"strict decoding error: {listed}"
        )
    return [f'299 - "unknown field \\"{field}\\""' for field in unknown]


def _with_warnings(response: web.Response, warnings: list[str]) -> web.Response:
    for warning in warnings:
        response.headers.add("Warning", warning)
    return response


def _check_identity(rtype: ResourceType, info: RequestInfo, obj: dict[str, Any]) -> None:
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if api_version and api_version != rtype.api_version:
        raise errors.bad_request(
            f"the API version in the data ({api_version}) does not match the expected API "
            f"version ({rtype.api_version})"
        )
    if kind and kind != rtype.kind:
        raise errors.bad_request(
            f"the kind in the data ({kind}) does not match the expected kind ({rtype.kind})"
        )
    metadata = obj.setdefault("metadata", {}) or {}
    obj["metadata"] = metadata
    body_ns = metadata.get("namespace")
    if rtype.namespaced and body_ns and info.namespace and body_ns != info.namespace:
        raise errors.bad_request(
            "the namespace of the provided object does not match the namespace sent on the request"
        )
    if info.name and metadata.get("name") and metadata["name"] != info.name:
        raise errors.bad_request(
            f"the name of the object ({metadata['name']}) does not match the name on the URL "
            f"({info.name})"
        )


def _check_serviceaccount(state: EmulatorState, namespace: str, pod: dict[str, Any]) -> None:
    # The ServiceAccount admission plugin refuses pods naming an account that does not exist.
    name = pod["spec"].get("serviceAccountName", "default")
    if state.store.get(_SERVICEACCOUNTS, namespace, name) is None:
        raise errors.ApiError(
            403,
            "Forbidden",
            f'pods "{pod["metadata"].get("name") or pod["metadata"].get("generateName", "")}" is '
            f"forbidden: error looking up service account {namespace}/{name}: serviceaccount "
            f'"{name}" not found',
            details={"name": pod["metadata"].get("name", ""), "kind": "pods"},
        )


def _check_namespace_active(
    state: EmulatorState, namespace: str, rtype: ResourceType, obj: dict[str, Any]
) -> None:
    # The NamespaceLifecycle admission plugin: nothing new in a namespace being deleted.
    ns = state.store.get(resource_type("namespaces"), None, namespace)
    if ns is None or not ns["metadata"].get("deletionTimestamp"):
        return
    name = obj["metadata"].get("name") or obj["metadata"].get("generateName", "")
    raise errors.ApiError(
        403,
        "Forbidden",
        f'{rtype.plural} "{name}" is forbidden: unable to create new content in namespace '
        f"{namespace} because it is being terminated",
        details={
            "name": name,
            "kind": rtype.plural,
            "causes": [
                {
                    "reason": "NamespaceTerminating",
                    "message": f"namespace {namespace} is being terminated",
                    "field": "metadata.namespace",
                }
            ],
        },
    )


async def _create(
    request: web.Request, state: EmulatorState, rtype: ResourceType, info: RequestInfo
) -> web.StreamResponse:
    obj = await read_object(request)
    return await create_object(request, state, rtype, info, obj)


async def create_object(
    request: web.Request,
    state: EmulatorState,
    rtype: ResourceType,
    info: RequestInfo,
    obj: dict[str, Any],
) -> web.StreamResponse:
    """Admit and store a new object; 201 with the stored object."""
    if info.name:
        raise errors.method_not_allowed("create")
    _check_identity(rtype, info, obj)
    warnings = _field_validation(request, state, rtype, obj)
    admission.check_quantities(rtype.kind, obj)
    admission.validate_metadata(rtype.kind, obj, rtype.group)
    admission.prepare_create(rtype.plural, obj)
    namespace = info.namespace or obj["metadata"].get("namespace")
    if namespace and rtype.namespaced:
        _check_namespace_active(state, namespace, rtype, obj)
    if rtype.plural == "pods" and namespace:
        found = state.store.get(resource_type("namespaces"), None, namespace)
        if found is None:
            raise errors.not_found("namespaces", namespace)
        _check_serviceaccount(state, namespace, obj)
        podsecurity.admit((found.get("metadata") or {}).get("labels") or {}, obj)
        quotas = state.store.list(_QUOTAS, namespace)
        if quotas:
            quota.admit(obj, quotas, state.store.list(_PODS, namespace))
    created = state.store.create(rtype, info.namespace, obj, dry_run=_dry_run(request))
    return _with_warnings(_respond_object(request, rtype, created, 201), warnings)


async def _update(
    request: web.Request, state: EmulatorState, rtype: ResourceType, info: RequestInfo
) -> web.StreamResponse:
    obj = await read_object(request)
    _check_identity(rtype, info, obj)
    warnings = _field_validation(request, state, rtype, obj)
    old = state.store.require(rtype, info.namespace, info.name)
    expect_rv = obj["metadata"].get("resourceVersion")
    admission.check_quantities(rtype.kind, obj)
    admission.validate_metadata(rtype.kind, obj, rtype.group)
    new = admission.prepare_update(rtype.plural, info.subresource, old, obj)
    stored = state.store.replace(
        rtype, info.namespace, info.name, new, expect_rv=expect_rv, dry_run=_dry_run(request)
    )
    return _with_warnings(_respond_object(request, rtype, stored), warnings)


def _apply_patch(kind: str, old: dict[str, Any], body: Any) -> dict[str, Any]:
    try:
        if kind == "json":
            result = json_patch(old, body)
        elif kind == "merge":
            result = merge_patch(old, body)
        else:
            result = strategic_merge(old, body)
    except (PatchError, KeyError, TypeError, ValueError) as exc:
        raise errors.ApiError(
            422, "Invalid", f"the server rejected our request due to an error in our request: {exc}"
        ) from exc
    if not isinstance(result, dict):
        raise errors.bad_request("the patch did not produce an object")
    return result


async def _patch(
    request: web.Request, state: EmulatorState, rtype: ResourceType, info: RequestInfo
) -> web.StreamResponse:
    kind = PATCH_TYPES.get(media_type(request))
    if kind is None:
        raise errors.unsupported_media_type(media_type(request))
    body = decode(await request.read(), media_type(request))
    old = state.store.get(rtype, info.namespace, info.name)
    if old is None:
        if kind == "apply" and not info.subresource and isinstance(body, dict):
            return await create_object(request, state, rtype, _collection(info), body)
        raise errors.not_found(rtype.plural, info.name, rtype.group)
    if kind == "apply" and isinstance(body, dict):
        _check_identity(rtype, info, body)
    patched = _apply_patch(kind, clone(old), body)
    warnings = _field_validation(request, state, rtype, patched)
    expect_rv = patched.get("metadata", {}).get("resourceVersion")
    if expect_rv == old["metadata"]["resourceVersion"]:
        expect_rv = None
    admission.check_quantities(rtype.kind, patched)
    admission.validate_metadata(rtype.kind, patched, rtype.group)
    new = admission.prepare_update(rtype.plural, info.subresource, old, patched)
    stored = state.store.replace(
        rtype, info.namespace, info.name, new, expect_rv=expect_rv, dry_run=_dry_run(request)
    )
    return _with_warnings(_respond_object(request, rtype, stored), warnings)


def _collection(info: RequestInfo) -> RequestInfo:
    return RequestInfo(
        True, "create", info.path, info.group, info.version, info.resource, "", info.namespace, ""
    )


async def _delete_options(request: web.Request) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if request.can_read_body:
        raw = await request.read()
        if raw.strip():
            body = decode(raw, media_type(request))
            if isinstance(body, dict):
                options = body
    grace = request.query.get("gracePeriodSeconds")
    if grace is not None:
        options["gracePeriodSeconds"] = int(grace)
    return options


def _check_preconditions(rtype: ResourceType, obj: dict[str, Any], options: dict[str, Any]) -> None:
    pre = options.get("preconditions") or {}
    meta = obj["metadata"]
    if pre.get("uid") and pre["uid"] != meta["uid"]:
        raise errors.ApiError(
            409,
            "Conflict",
            f'Operation cannot be fulfilled on {rtype.plural} "{meta["name"]}": '
            f"Precondition failed: UID in precondition: {pre['uid']}, "
            f"UID in object meta: {meta['uid']}",
        )
    if pre.get("resourceVersion") and pre["resourceVersion"] != meta["resourceVersion"]:
        raise errors.ApiError(
            409,
            "Conflict",
            f'Operation cannot be fulfilled on {rtype.plural} "{meta["name"]}": '
            f"Precondition failed: ResourceVersion in precondition: {pre['resourceVersion']}, "
            f"ResourceVersion in object meta: {meta['resourceVersion']}",
        )


async def _delete(
    request: web.Request, state: EmulatorState, rtype: ResourceType, info: RequestInfo
) -> web.StreamResponse:
    options = await _delete_options(request)
    current = state.store.require(rtype, info.namespace, info.name)
    _check_preconditions(rtype, current, options)
    if _dry_run(request):
        return respond(current)
    obj, _ = state.store.delete(
        rtype, info.namespace, info.name, grace=options.get("gracePeriodSeconds")
    )
    if rtype.plural in ("pods", "namespaces"):
        return respond(obj)
    details = {"name": info.name, "kind": rtype.plural, "uid": obj["metadata"]["uid"]}
    if rtype.group:
        details["group"] = rtype.group
    return respond(success_status(details))


async def _delete_collection(
    request: web.Request, state: EmulatorState, rtype: ResourceType, info: RequestInfo
) -> web.StreamResponse:
    options = await _delete_options(request)
    predicate = _selector(request, rtype, info)
    for obj in [o for o in state.store.list(rtype, info.namespace) if predicate(o)]:
        meta = obj["metadata"]
        if state.store.get(rtype, meta.get("namespace"), meta["name"]) is not None:
            state.store.delete(
                rtype, meta.get("namespace"), meta["name"], grace=options.get("gracePeriodSeconds")
            )
    return respond(success_status())


_HANDLERS = {
    "get": _get,
    "list": _list,
    "watch": _watch,
    "create": _create,
    "update": _update,
    "patch": _patch,
    "delete": _delete,
    "deletecollection": _delete_collection,
}
