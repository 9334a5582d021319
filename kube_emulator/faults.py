"""Fault injection and request accounting, driven from tests on another thread.

Tests need the API to misbehave on cue (throttling with Retry-After, 500s, dropped
connections, closed watches, compacted history, latency, a node that stops reporting)
and to count what a client cost (requests per verb and resource). Everything here is
guarded by a lock; actions that touch the store are marshalled onto the emulator loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

FaultStatus = int | Literal["drop"]


@dataclass
class _Rule:
    remaining: int
    verb: str | None
    resource: str | None
    status: FaultStatus
    retry_after: int

    def matches(self, verb: str, resource: str) -> bool:
        return (self.verb is None or self.verb == verb) and (
            self.resource is None or self.resource == resource
        )


@dataclass(frozen=True)
class Fault:
    """What to do to one request."""

    status: FaultStatus
    retry_after: int


class Faults:
    """The test-facing fault switchboard of one emulator."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        *,
        close_watches: Callable[[], None],
        compact: Callable[[], None],
        set_node_lost: Callable[[bool], None] = lambda lost: None,
    ) -> None:
        self._loop = loop
        self._close_watches = close_watches
        self._compact = compact
        self._set_node_lost = set_node_lost
        self._lock = threading.Lock()
        self._rules: list[_Rule] = []
        self._latency = 0.0

    def fail_next(
        self,
        count: int,
        *,
        verb: str | None = None,
        resource: str | None = None,
        status: FaultStatus = 500,
        retry_after: int = 1,
    ) -> None:
        """Fail the next ``count`` matching requests with 500 (or another 5xx), 429 with
        Retry-After, 422 Invalid (a validation failure naming the object), or a dropped
        connection."""
        if status not in (500, 429, "drop") and not isinstance(status, int):
            raise ValueError(f"unsupported fault status {status!r}")
        with self._lock:
            self._rules.append(_Rule(count, verb, resource, status, retry_after))

    def take(self, verb: str, resource: str) -> Fault | None:
        """Consume the fault for this request, if one is armed."""
        with self._lock:
            for rule in self._rules:
                if rule.remaining > 0 and rule.matches(verb, resource):
                    rule.remaining -= 1
                    if rule.remaining == 0:
                        self._rules.remove(rule)
                    return Fault(rule.status, rule.retry_after)
        return None

    def clear(self) -> None:
        """Disarm every pending fault and remove latency."""
        with self._lock:
            self._rules.clear()
            self._latency = 0.0

    def set_latency(self, seconds: float) -> None:
        """Delay every API request by ``seconds``."""
        with self._lock:
            self._latency = max(0.0, seconds)

    @property
    def latency(self) -> float:
        """Current added latency in seconds."""
        with self._lock:
            return self._latency

    def close_watches(self) -> None:
        """End every open watch stream now."""
        self._on_loop(self._close_watches)

    def compact(self) -> None:
        """Drop watch history: resuming from any earlier resourceVersion gets 410 Expired."""
        self._on_loop(self._compact)

    def node_not_ready(self) -> None:
        """The node stops reporting: NotReady (Ready Unknown), its pods phase Unknown."""
        self._on_loop(lambda: self._set_node_lost(True))

    def node_ready(self) -> None:
        """The node reports again; what its kubelet did meanwhile becomes visible."""
        self._on_loop(lambda: self._set_node_lost(False))

    def _on_loop(self, action: Callable[[], None]) -> None:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            action()
            return

        async def run() -> None:
            action()

        asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout=10)


class RequestCounter:
    """Requests per (verb, resource); thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, str]] = Counter()

    def add(self, verb: str, resource: str) -> None:
        """Count one request."""
        with self._lock:
            self._counts[(verb, resource)] += 1

    def snapshot(self) -> dict[tuple[str, str], int]:
        """A copy of the counts."""
        with self._lock:
            return dict(self._counts)

    def reset(self) -> None:
        """Start counting from zero."""
        with self._lock:
            self._counts.clear()
