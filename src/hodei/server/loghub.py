"""Live log fan-out, and the reader that joins stored and live chunks without a seam.

Chunks are stored first and published after, so a follower that subscribes *before*
reading the store sees every chunk at least once: either in its read or on its queue.
It then drops what it has already sent (by sequence) and fills any gap from the store,
which makes the switch from stored to live lossless and duplicate-free.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager

from hodei.domain.ids import JobId
from hodei.domain.logs import LogChunk
from hodei.store.base import Store

_END = None  # queue sentinel: the job has ended
_PAGE = 256


class LogHub:
    """Per-job subscriber queues of freshly stored chunks."""

    def __init__(self) -> None:
        self._followers: dict[JobId, set[asyncio.Queue[LogChunk | None]]] = {}

    def publish(self, job_id: JobId, chunks: Sequence[LogChunk]) -> None:
        for queue in self._followers.get(job_id, ()):
            for chunk in chunks:
                queue.put_nowait(chunk)

    def close(self, job_id: JobId) -> None:
        """The job ended: followers finish after draining what is stored."""
        for queue in self._followers.get(job_id, ()):
            queue.put_nowait(_END)

    @asynccontextmanager
    async def follow(self, job_id: JobId) -> AsyncIterator[asyncio.Queue[LogChunk | None]]:
        queue: asyncio.Queue[LogChunk | None] = asyncio.Queue()
        self._followers.setdefault(job_id, set()).add(queue)
        try:
            yield queue
        finally:
            followers = self._followers.get(job_id)
            if followers is not None:
                followers.discard(queue)
                if not followers:
                    del self._followers[job_id]


async def _stored(store: Store, job_id: JobId, after: int) -> AsyncIterator[LogChunk]:
    while True:
        page = await store.read_logs(job_id, after=after, limit=_PAGE)
        for chunk in page:
            yield chunk
            after = chunk.sequence
        if len(page) < _PAGE:
            return


async def read_logs(
    store: Store,
    hub: LogHub,
    job_id: JobId,
    *,
    from_sequence: int = 0,
    follow: bool = False,
    job_ended: Callable[[], Awaitable[bool]],
) -> AsyncIterator[LogChunk]:
    """Chunks from ``from_sequence`` (inclusive) on; with ``follow``, live ones until the
    job ends. ``job_ended`` is asked after subscribing, closing the race with the end."""
    last = max(from_sequence - 1, 0)
    if not follow:
        async for chunk in _stored(store, job_id, last):
            yield chunk
        return
    async with hub.follow(job_id) as queue:
        async for chunk in _stored(store, job_id, last):
            yield chunk
            last = chunk.sequence
        if await job_ended():
            async for chunk in _stored(store, job_id, last):
                yield chunk
            return
        while (item := await queue.get()) is not _END:
            if item.sequence <= last:
                continue  # already sent from the store, or a re-sent batch
            if item.sequence > last + 1:  # a gap: fill it from the store
                missing = item.sequence - last - 1
                for chunk in await store.read_logs(job_id, after=last, limit=missing):
                    yield chunk
                    last = chunk.sequence
            yield item
            last = item.sequence
        async for chunk in _stored(store, job_id, last):
            yield chunk
