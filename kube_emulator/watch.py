"""Watch events: a bounded history of changes and the live subscribers that receive them.

kube-apiserver serves watches from a window of recent changes (the watch cache): a client
resuming from a resourceVersion inside the window gets every later change; one older
than the window gets 410 Expired. `WatchHub` keeps that window (a deque of events, one
global resourceVersion order) and fans each new event out to the matching subscribers'
queues. Events share one immutable object; the JSON line is rendered once per event and
per transformed type, whatever the number of watchers.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

Predicate = Callable[[dict[str, Any]], bool]


@dataclass
class WatchEvent:
    """One change; ``obj`` is the stored object after the change (never mutated)."""

    rv: int
    type: str  # ADDED, MODIFIED, DELETED
    resource: str  # plural
    namespace: str
    obj: dict[str, Any]
    old: dict[str, Any] | None = None
    _lines: dict[str, bytes] = field(default_factory=dict, repr=False)

    def line(self, event_type: str | None = None) -> bytes:
        """The newline-terminated JSON watch event, cached per event type."""
        event_type = event_type or self.type
        cached = self._lines.get(event_type)
        if cached is None:
            payload = {"type": event_type, "object": self.obj}
            cached = json.dumps(payload, separators=(",", ":")).encode() + b"\n"
            self._lines[event_type] = cached
        return cached


@dataclass(eq=False)  # identity semantics: subscribers live in a set
class Subscriber:
    """A live watch: what it selects and where its events go (None ends the stream)."""

    resource: str
    namespace: str | None
    predicate: Predicate
    queue: asyncio.Queue[tuple[str, WatchEvent] | None] = field(default_factory=asyncio.Queue)

    def offer(self, event: WatchEvent) -> None:
        """Queue the event as this watcher sees it through its filter."""
        if event.resource != self.resource:
            return
        if self.namespace is not None and event.namespace != self.namespace:
            return
        kind = visible_type(event, self.predicate)
        if kind is not None:
            self.queue.put_nowait((kind, event))


def visible_type(event: WatchEvent, predicate: Predicate) -> str | None:
    """The event type a filtered watcher sees, or None.

    As in the watch cache, an object that starts matching the filter is ADDED and one
    that stops matching is DELETED for that watcher.
    """
    now = predicate(event.obj)
    if event.type != "MODIFIED":
        return event.type if now else None
    before = event.old is not None and predicate(event.old)
    if now and before:
        return "MODIFIED"
    if now:
        return "ADDED"
    if before:
        return "DELETED"
    return None


class TooOld(Exception):
    """The requested resourceVersion is older than the retained history."""


class WatchHub:
    """Bounded history plus fan-out."""

    def __init__(self, capacity: int = 10_000) -> None:
        self._history: deque[WatchEvent] = deque()
        self._capacity = capacity
        self._floor = 0  # resumes from rv < floor have lost events
        self._subscribers: set[Subscriber] = set()

    @property
    def floor(self) -> int:
        """Resuming from a version below this one has lost events (410)."""
        return self._floor

    def publish(self, event: WatchEvent) -> None:
        """Record and deliver one event."""
        self._history.append(event)
        if len(self._history) > self._capacity:
            dropped = self._history.popleft()
            self._floor = dropped.rv
        for sub in self._subscribers:
            sub.offer(event)

    def subscribe(self, sub: Subscriber, since: int | None) -> None:
        """Register ``sub``; with ``since`` first queue the retained events after it."""
        if since is not None:
            if since < self._floor:
                raise TooOld(since)
            for event in self._events_after(since):
                sub.offer(event)
        self._subscribers.add(sub)

    def _events_after(self, since: int) -> Iterable[WatchEvent]:
        # History is short and ordered; skipping from the left is cheap enough.
        return (event for event in self._history if event.rv > since)

    def unsubscribe(self, sub: Subscriber) -> None:
        """Forget a watcher (idempotent)."""
        self._subscribers.discard(sub)

    def compact(self, current_rv: int) -> None:
        """Drop history: resuming from any version below ``current_rv`` now fails."""
        self._history.clear()
        self._floor = current_rv

    def close_all(self) -> None:
        """End every open watch stream (clients see the connection end and re-watch)."""
        for sub in list(self._subscribers):
            sub.queue.put_nowait(None)
        self._subscribers.clear()
