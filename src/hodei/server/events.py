"""Job change notifications for WatchJob: each subscriber gets every change in order.

A job changes state a handful of times, so an unbounded queue per subscriber is cheap
and guarantees a watcher sees every state (and every waiting reason) without polling.
A job's waiting reason is one of its fields, so a change is simply the new :class:`Job`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from hodei.domain.ids import JobId
from hodei.domain.jobs import Job


class JobEvents:
    """Fan-out of job changes to subscribers of one job."""

    def __init__(self) -> None:
        self._subscribers: dict[JobId, set[asyncio.Queue[Job]]] = {}

    def publish(self, job: Job) -> None:
        for queue in self._subscribers.get(job.id, ()):
            queue.put_nowait(job)

    @asynccontextmanager
    async def subscribe(self, job_id: JobId) -> AsyncIterator[asyncio.Queue[Job]]:
        """A queue receiving every change of ``job_id`` while the context is open."""
        queue: asyncio.Queue[Job] = asyncio.Queue()
        self._subscribers.setdefault(job_id, set()).add(queue)
        try:
            yield queue
        finally:
            subscribers = self._subscribers.get(job_id)
            if subscribers is not None:
                subscribers.discard(queue)
                if not subscribers:
                    del self._subscribers[job_id]
