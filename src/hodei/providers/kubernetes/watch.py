"""One shared list+watch of the worker pods in a namespace, and the cache it keeps.

Polling each pod would cost one GET per worker per second; instead the provider lists
its label-selected pods once, then watches from the list's resourceVersion (with
bookmarks, so a quiet stream still advances). A dropped stream resumes from the last
resourceVersion seen. When that version is too old (410 Gone) the watcher lists again
and diffs the new list against its cache, emitting the ADDED/MODIFIED/DELETED events
it missed, so no transition is lost and none is delivered twice. A stream that stays
silent longer than the inactivity timeout is presumed stalled and restarted. The cache
answers every status question without I/O.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from hodei.providers.kubernetes.errors import KubernetesApiError
from hodei.providers.kubernetes.retry import RetryPolicy

log = logging.getLogger(__name__)

EventType = Literal["ADDED", "MODIFIED", "DELETED"]
Pod = dict[str, Any]


@dataclass(frozen=True)
class PodEvent:
    """A change to one pod; ``synthetic`` when it was inferred from a relist."""

    type: EventType
    pod: Pod
    synthetic: bool = False

    @property
    def name(self) -> str:
        return pod_key(self.pod)


def pod_key(pod: Mapping[str, Any]) -> str:
    return str((pod.get("metadata") or {}).get("name", ""))


def resource_version(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion", ""))


class PodCache:
    """The last known object of each watched pod, and the merge rules for events."""

    def __init__(self) -> None:
        self._pods: dict[str, Pod] = {}

    def __len__(self) -> int:
        return len(self._pods)

    def get(self, name: str) -> Pod | None:
        return self._pods.get(name)

    def pods(self) -> list[Pod]:
        return list(self._pods.values())

    def add_if_absent(self, pod: Pod) -> bool:
        """Seed the cache with a pod the provider just created (the watch may lag)."""
        if pod_key(pod) in self._pods:
            return False
        self._pods[pod_key(pod)] = pod
        return True

    def apply(self, type_: str, pod: Pod, *, synthetic: bool = False) -> PodEvent | None:
        """Merge one event; return what changed, or ``None`` for a repeat or a stale delete."""
        name = pod_key(pod)
        old = self._pods.get(name)
        if type_ == "DELETED":
            if old is None:
                return None
            del self._pods[name]
            return PodEvent("DELETED", pod, synthetic)
        if old is not None and resource_version(old) == resource_version(pod):
            return None
        self._pods[name] = pod
        return PodEvent("ADDED" if old is None else "MODIFIED", pod, synthetic)

    def replace(self, listed: Iterable[Pod]) -> list[PodEvent]:
        """Adopt a fresh list; return the events that take the cache there."""
        fresh = {pod_key(p): p for p in listed}
        events = [
            PodEvent("DELETED", self._pods.pop(name), synthetic=True)
            for name in [n for n in self._pods if n not in fresh]
        ]
        for pod in fresh.values():
            event = self.apply("ADDED", pod, synthetic=True)
            if event is not None:
                events.append(event)
        return events


class PodSource(Protocol):
    """The two API calls the watcher needs (implemented by the client module)."""

    async def list_pods(
        self, *, label_selector: str, limit: int | None = None, continue_token: str | None = None
    ) -> dict[str, Any]: ...

    async def open_watch(
        self, *, label_selector: str, resource_version: str, timeout_seconds: int
    ) -> WatchEvents: ...


class WatchEvents(Protocol):
    async def next(self) -> dict[str, Any] | None: ...

    def close(self) -> None: ...


class _Stalled(Exception):
    """No event or bookmark within the inactivity timeout."""


@dataclass(frozen=True)
class WatchTiming:
    """How long a watch request lasts on the server, and how long silence is tolerated."""

    server_timeout: int = 60  # the server ends the stream; it is reopened at once
    inactivity: float = 90.0  # no event nor bookmark for this long: presumed stalled
    page_size: int = 500


class PodWatcher:
    """Keeps :attr:`cache` in step with the API and reports each change to ``on_event``."""

    def __init__(
        self,
        source: PodSource,
        *,
        selector: str,
        on_event: Callable[[PodEvent], None],
        on_restart: Callable[[str], None] = lambda reason: None,
        transform: Callable[[Pod], Pod] = lambda pod: pod,
        timing: WatchTiming | None = None,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rand: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cache = PodCache()
        self.version = ""  # the last resourceVersion seen; empty: list before watching
        self.last_error: KubernetesApiError | None = None
        self._source = source
        self._selector = selector
        self._on_event = on_event
        self._on_restart = on_restart
        self._transform = transform
        self._timing = timing or WatchTiming()
        self._policy = policy or RetryPolicy(base=0.5, cap=30.0)
        self._sleep = sleep
        self._rand = rand
        self._clock = clock

    def _emit(self, events: Iterable[PodEvent]) -> None:
        for event in events:
            self._on_event(event)

    async def relist(self) -> str:
        """List every selected pod (page by page), sync the cache, return the list's version."""
        pods: list[Pod] = []
        token: str | None = None
        while True:
            page = await self._source.list_pods(
                label_selector=self._selector, limit=self._timing.page_size, continue_token=token
            )
            pods.extend(self._transform(p) for p in page.get("items") or [])
            meta = page.get("metadata") or {}
            token = meta.get("continue") or None
            if token is None:
                break
        self._emit(self.cache.replace(pods))
        self.last_error = None
        return str(meta.get("resourceVersion", ""))

    async def _stream(self) -> bool:
        """Follow one watch request from :attr:`version`, advancing it with each event.
        Return whether the stream was useful: it delivered something, or lasted long
        enough not to be a connection that refuses to stay open."""
        opened = self._clock()
        stream = await self._source.open_watch(
            label_selector=self._selector,
            resource_version=self.version,
            timeout_seconds=self._timing.server_timeout,
        )
        received = False
        try:
            while True:
                try:
                    # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a
                    # cancellation that races with a result, and close() would hang.
                    async with asyncio.timeout(self._timing.inactivity):
                        event = await stream.next()
                except TimeoutError:
                    raise _Stalled from None
                if event is None:
                    return received or self._clock() - opened >= 1.0
                received = True
                self.version = resource_version(event.get("object") or {}) or self.version
                if event.get("type") in ("ADDED", "MODIFIED", "DELETED"):
                    change = self.cache.apply(str(event["type"]), self._transform(event["object"]))
                    if change is not None:
                        self._on_event(change)
        finally:
            stream.close()

    async def run(self, version: str) -> None:
        """Watch forever from ``version`` (from :meth:`relist`); cancel to stop."""
        self.version = version
        failures = 0
        while True:
            try:
                if not self.version:
                    self.version = await self.relist()
                useful = await self._stream()
                reason = "closed"
                failures = 0 if useful else failures + 1
            except KubernetesApiError as exc:
                if exc.gone:
                    self.version, reason = "", "expired"
                else:
                    self.last_error, reason = exc, "error"
                    failures += 1
                log.info("pod watch restarting (%s): %s", reason, exc)
            except _Stalled:
                reason = "stalled"
            except Exception:  # a bug must not end the one watch everything depends on
                log.exception("pod watch failed; restarting")
                reason = "error"
                failures += 1
            self._on_restart(reason)
            if failures:
                await self._sleep(self._policy.backoff(min(failures - 1, 10), self._rand()))
