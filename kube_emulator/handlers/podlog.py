"""``pods/log``: a container's output, once or followed, with the kubelet's options."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp import web

from .. import errors, logs
from ..meta import parse_rfc3339
from ..requestinfo import RequestInfo
from ..resources import resource_type
from ..state import EmulatorState

_PODS = resource_type("pods")


def _container(pod: dict[str, Any], requested: str | None) -> str:
    names: list[str] = [c["name"] for c in (pod.get("spec") or {}).get("containers") or []]
    init: list[str] = [c["name"] for c in (pod.get("spec") or {}).get("initContainers") or []]
    pod_name = pod["metadata"]["name"]
    if requested:
        if requested not in [*names, *init]:
            raise errors.bad_request(f"container {requested} is not valid for pod {pod_name}")
        return requested
    if len(names) == 1:
        return names[0]
    raise errors.bad_request(
        f"a container name must be specified for pod {pod_name}, choose one of: [{' '.join(names)}]"
    )


def _waiting_reason(pod: dict[str, Any], container: str) -> str | None:
    """Why the container has no log yet, or None when it has started."""
    status_of = pod.get("status") or {}
    statuses = [
        *(status_of.get("initContainerStatuses") or []),
        *(status_of.get("containerStatuses") or []),
    ]
    for status in statuses:
        if status.get("name") == container:
            state = status.get("state") or {}
            if "waiting" in state:
                return str(state["waiting"].get("reason") or "ContainerCreating")
            return None
    return "ContainerCreating"


def _int_param(request: web.Request, name: str) -> int | None:
    value = request.query.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError as exc:
        raise errors.bad_request(f"invalid {name}: {value}") from exc


def _since(request: web.Request) -> float | None:
    seconds = _int_param(request, "sinceSeconds")
    if seconds is not None:
        return time.time() - seconds
    since_time = request.query.get("sinceTime")
    return parse_rfc3339(since_time) if since_time else None


async def handle(
    request: web.Request, state: EmulatorState, info: RequestInfo
) -> web.StreamResponse:
    """Serve the log of one container of one pod."""
    if info.verb != "get":
        raise errors.method_not_allowed(info.verb)
    assert info.namespace is not None
    pod = state.store.require(_PODS, info.namespace, info.name)
    container = _container(pod, request.query.get("container"))
    if request.query.get("previous", "").lower() in ("true", "1"):
        # The emulator keeps no log of earlier instances of a container.
        raise errors.bad_request(
            f'previous terminated container "{container}" in pod "{info.name}" not found'
        )
    buffer = state.store.log_buffer(info.namespace, info.name, container)
    reason = _waiting_reason(pod, container)
    if buffer is None and reason is not None:
        raise errors.bad_request(
            f'container "{container}" in pod "{info.name}" is waiting to start: {reason}'
        )
    options = {
        "timestamps": request.query.get("timestamps", "").lower() in ("true", "1"),
        "tail_lines": _int_param(request, "tailLines"),
        "since_time": _since(request),
    }
    limit = _int_param(request, "limitBytes")
    follow = request.query.get("follow", "").lower() in ("true", "1")
    done = state.store.container_done(info.namespace, info.name, container)
    if not follow or done:
        lines = buffer.snapshot(include_partial=True) if buffer else []
        body = logs.render(lines, **options)  # type: ignore[arg-type]
        return web.Response(body=body[:limit] if limit else body, content_type="text/plain")
    return await _follow(request, state, info, container, options)


async def _follow(
    request: web.Request,
    state: EmulatorState,
    info: RequestInfo,
    container: str,
    options: dict[str, Any],
) -> web.StreamResponse:
    assert info.namespace is not None
    buffer = state.store.ensure_log_buffer(info.namespace, info.name, container)
    response = web.StreamResponse(headers={"Content-Type": "text/plain"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    sent = len(buffer.lines)
    first = logs.render(buffer.snapshot(include_partial=False), **options)
    if first:
        await response.write(first)
    try:
        while True:
            changed = buffer.changed()
            done = state.store.container_done(info.namespace, info.name, container)
            if len(buffer.lines) > sent:
                chunk = buffer.lines[sent:]
                sent = len(buffer.lines)
                await response.write(logs.render(chunk, timestamps=options["timestamps"]))
            if done:
                if buffer.partial:
                    tail = [(buffer.partial_time, buffer.partial)]
                    await response.write(logs.render(tail, timestamps=options["timestamps"]))
                break
            try:
                await asyncio.wait_for(changed.wait(), 1.0)
            except TimeoutError:
                continue
    except ConnectionResetError:
        pass
    await response.write_eof()
    return response
