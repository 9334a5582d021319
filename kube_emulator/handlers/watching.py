"""Watch streams: newline-delimited JSON events over a chunked response.

A watch without resourceVersion (or "0") starts with synthetic ADDED events for what
exists; one with a resourceVersion replays the retained history after it, or sends a
single ERROR event carrying a 410 Expired Status when that version is too old. With
``allowWatchBookmarks`` idle streams get BOOKMARK events carrying the current version.
The stream ends at ``timeoutSeconds`` or when the emulator closes watches.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from .. import errors, tables
from ..requestinfo import RequestInfo
from ..resources import ResourceType
from ..state import EmulatorState
from ..watch import Subscriber, TooOld, WatchEvent

Predicate = Callable[[Mapping[str, Any]], bool]


def _line(event_type: str, obj: Any) -> bytes:
    return json.dumps({"type": event_type, "object": obj}, separators=(",", ":")).encode() + b"\n"


class _Renderer:
    """Event lines as JSON objects, or as one-row Tables for ``kubectl get -w``."""

    def __init__(self, request: web.Request, rtype: ResourceType) -> None:
        self.rtype = rtype
        self.as_table = tables.wants_table(request.headers.get("Accept", ""))
        self.include = request.query.get("includeObject", "Metadata")

    def event(self, event_type: str, event: WatchEvent) -> bytes:
        if not self.as_table:
            return event.line(event_type)
        return self.object(event_type, event.obj)

    def object(self, event_type: str, obj: dict[str, Any]) -> bytes:
        if self.as_table:
            meta = {"resourceVersion": obj["metadata"].get("resourceVersion", "")}
            obj = tables.table(self.rtype.plural, [obj], meta, self.include)
        return _line(event_type, obj)

    def bookmark(self, rv: int, *, initial_end: bool = False) -> bytes:
        metadata: dict[str, Any] = {"resourceVersion": str(rv)}
        if initial_end:
            metadata["annotations"] = {"k8s.io/initial-events-end": "true"}
        obj = {"kind": self.rtype.kind, "apiVersion": self.rtype.api_version, "metadata": metadata}
        return _line("BOOKMARK", obj)


def _flag(request: web.Request, name: str) -> bool:
    return request.query.get(name, "").lower() in ("true", "1")


def _parse_rv(text: str | None) -> int | None:
    if text in (None, "", "0"):
        return None
    try:
        return int(text)
    except ValueError as exc:
        raise errors.bad_request(f'invalid resource version "{text}"') from exc


async def serve(
    request: web.Request,
    state: EmulatorState,
    rtype: ResourceType,
    info: RequestInfo,
    predicate: Predicate,
) -> web.StreamResponse:
    """Stream one watch until timeout, client disconnect or close_watches()."""
    since = _parse_rv(request.query.get("resourceVersion"))
    bookmarks = _flag(request, "allowWatchBookmarks")
    timeout = float(request.query.get("timeoutSeconds") or state.watch_timeout)
    render = _Renderer(request, rtype)
    sub = Subscriber(rtype.plural, info.namespace, predicate)
    initial: list[bytes] = []
    send_initial = since is None or _flag(request, "sendInitialEvents")
    expired = False
    try:
        state.store.hub.subscribe(sub, since if not send_initial else None)
    except TooOld:
        expired = True
    if send_initial and not expired:
        for obj in state.store.list(rtype, info.namespace):
            if predicate(obj):
                initial.append(render.object("ADDED", obj))
        if _flag(request, "sendInitialEvents") and bookmarks:
            initial.append(render.bookmark(state.store.resource_version, initial_end=True))
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    if expired:
        error = errors.expired(f"too old resource version: {since} ({state.store.hub.floor})")
        await response.write(_line("ERROR", error.status()))
        return response
    try:
        if initial:
            await response.write(b"".join(initial))
        await _pump(response, state, sub, render, time.monotonic() + timeout, bookmarks)
    except ConnectionResetError:
        pass  # the client went away
    finally:
        state.store.hub.unsubscribe(sub)
    return response


async def _pump(
    response: web.StreamResponse,
    state: EmulatorState,
    sub: Subscriber,
    render: _Renderer,
    deadline: float,
    bookmarks: bool,
) -> None:
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        wait = min(remaining, state.bookmark_interval) if bookmarks else remaining
        try:
            item = await asyncio.wait_for(sub.queue.get(), wait)
        except TimeoutError:
            if bookmarks and deadline - time.monotonic() > 0:
                await response.write(render.bookmark(state.store.resource_version))
            continue
        if item is None:
            return
        lines = [render.event(*item)]
        while not sub.queue.empty():  # batch what is already queued into one write
            queued = sub.queue.get_nowait()
            if queued is None:
                await response.write(b"".join(lines))
                return
            lines.append(render.event(*queued))
        await response.write(b"".join(lines))
