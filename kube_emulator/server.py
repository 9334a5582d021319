"""The aiohttp application: authentication, authorization, faults, counting, dispatch.

Every request goes through one middleware that does what kube-apiserver's filter chain
does (authenticate the bearer token, apply impersonation, authorize with RBAC) plus the
test hooks (added latency, injected failures, per-verb/resource counting), then one
handler picks discovery, OpenAPI or a resource handler by the parsed request info.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from . import discovery, errors, openapi, requestinfo, resources
from .auth import impersonate
from .codec import error_response, respond
from .faults import Fault
from .handlers import resources as resource_handlers
from .rbac import Attributes
from .requestinfo import RequestInfo
from .state import INFO_KEY, USER_KEY, EmulatorState

log = logging.getLogger(__name__)
STATE_KEY = web.AppKey("state", EmulatorState)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def _invalid_fault(request: web.Request, info: RequestInfo) -> errors.ApiError:
    """A 422 shaped as the apiserver's validation answers it, naming the object sent."""
    name = info.name
    if not name and request.can_read_body:
        with contextlib.suppress(ValueError, UnicodeDecodeError):
            body = json.loads(await request.read())
            name = str(((body or {}).get("metadata") or {}).get("name") or "")
    kind = resources.by_plural(info.resource)
    return errors.invalid(
        kind.kind if kind is not None else info.resource,
        name,
        [("spec", "FieldValueInvalid", "Invalid value: injected fault")],
    )


async def _fault_response(
    request: web.Request, info: RequestInfo, fault: Fault
) -> web.StreamResponse:
    if fault.status == "drop":
        if request.transport is not None:
            request.transport.abort()
        raise asyncio.CancelledError  # nothing more to say on a dead connection
    if fault.status == 429:
        error = errors.ApiError(
            429,
            "TooManyRequests",
            "Too many requests, please try again later.",
            details={"retryAfterSeconds": fault.retry_after},
            headers={"Retry-After": str(fault.retry_after)},
        )
    elif fault.status == 422:
        error = await _invalid_fault(request, info)
    else:
        error = errors.ApiError(
            int(fault.status), "InternalError", "Internal error occurred: injected fault"
        )
    return error_response(error)


def _attributes(info: RequestInfo) -> Attributes:
    return Attributes(
        verb=info.verb,
        resource=info.resource,
        subresource=info.subresource,
        group=info.group,
        namespace=info.namespace or "",
        name=info.name,
        is_resource=info.is_resource,
        path=info.path,
    )


@web.middleware
async def api_filters(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Authenticate, authorize, inject faults and count; errors become Status bodies."""
    state = request.app[STATE_KEY]
    info = requestinfo.parse(request.method, request.path, request.query)
    request[INFO_KEY] = info
    try:
        if info.is_resource:
            state.counter.add(info.verb, info.full_resource)
            latency = state.faults.latency
            if latency:
                await asyncio.sleep(latency)
            fault = state.faults.take(info.verb, info.full_resource)
            if fault is not None:
                return await _fault_response(request, info, fault)
        user = state.authenticator.authenticate(request.headers.get("Authorization"))
        groups = request.headers.getall("Impersonate-Group", [])
        user = impersonate(user, request.headers, groups, state.authorize)
        request[USER_KEY] = user
        attrs = _attributes(info)
        if not state.authorize(user, attrs).allowed:
            if not info.is_resource:
                raise errors.ApiError(
                    403,
                    "Forbidden",
                    f'forbidden: User "{user.name}" cannot {info.verb} path "{info.path}"',
                    details={},
                )
            raise errors.forbidden(
                user.name, info.verb, info.full_resource, info.group, info.namespace, info.name
            )
        return await handler(request)
    except errors.ApiError as error:
        return error_response(error)
    except (asyncio.CancelledError, web.HTTPException, ConnectionError):
        raise
    except Exception as exc:
        # The apiserver answers a panic in a handler with a 500 Status, and so do we.
        log.exception("internal error serving %s %s", request.method, request.path)
        return error_response(
            errors.ApiError(500, "InternalError", f"Internal error occurred: {exc!r}")
        )


def _not_found() -> errors.ApiError:
    return errors.ApiError(
        404, "NotFound", "the server could not find the requested resource", details={}
    )


def _non_resource(state: EmulatorState, path: str) -> web.StreamResponse:
    parts = [p for p in path.split("/") if p]
    version = state.kubernetes_version
    if parts == ["version"]:
        return respond(discovery.version_info(version))
    if parts in (["healthz"], ["livez"], ["readyz"]):
        return web.Response(text="ok")
    if parts == ["api"]:
        return respond(discovery.api_versions(state.server_address))
    if parts == ["apis"]:
        return respond(discovery.api_group_list())
    document = None
    if parts == ["api", "v1"]:
        document = discovery.resource_list("", "v1")
    elif len(parts) == 2 and parts[0] == "apis":
        document = discovery.api_group(parts[1])
    elif len(parts) == 3 and parts[0] == "apis":
        document = discovery.resource_list(parts[1], parts[2])
    elif parts == ["openapi", "v3"]:
        document = openapi.root_document(version)
    elif parts[:2] == ["openapi", "v3"]:
        document = openapi.find_document("/".join(parts[2:]), version)
    if document is None:
        raise _not_found()
    return respond(document)


async def dispatch(request: web.Request) -> web.StreamResponse:
    """Route by request info: resource handlers or discovery/OpenAPI/health."""
    state = request.app[STATE_KEY]
    info = request[INFO_KEY]
    if info.is_resource:
        return await resource_handlers.handle(request, state, info)
    if request.method not in ("GET", "HEAD"):
        raise errors.method_not_allowed(request.method)
    return _non_resource(state, request.path)


def create_app(state: EmulatorState) -> web.Application:
    """The aiohttp application serving one emulator."""
    app = web.Application(middlewares=[api_filters], client_max_size=64 * 1024 * 1024)
    app[STATE_KEY] = state
    app.router.add_route("*", "/{tail:.*}", dispatch)
    return app
