"""Live log following without a seam between stored and live chunks, in bounded memory.

The store is the only source of log bytes. Followers do not receive chunks; they are
woken when new chunks of their job are stored and then read the store from the last
sequence they sent. A follower subscribes *before* its first read and clears its wake-up
*before* each read, so a chunk stored at any moment is either in that read or wakes it
again: nothing is lost, nothing is sent twice, and a slow follower of a 100 MB job holds
one flag, not a queue of chunks.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from hodei.domain.ids import JobId
from hodei.domain.logs import LogChunk
from hodei.store.base import LogStore

_PAGE = 256


class Follower:
    """One follower's wake-up flag, and whether the job has ended."""

    def __init__(self) -> None:
        self.wake = asyncio.Event()
        self.ended = False


class LogHub:
    """Who follows which job's log."""

    def __init__(self) -> None:
        self._followers: dict[JobId, set[Follower]] = {}

    def following(self, job_id: JobId) -> int:
        return len(self._followers.get(job_id, ()))

    def publish(self, job_id: JobId) -> None:
        """New chunks of the job are stored: wake its followers."""
        for follower in self._followers.get(job_id, ()):
            follower.wake.set()

    def close(self, job_id: JobId) -> None:
        """The job ended: followers finish after reading what is stored."""
        for follower in self._followers.get(job_id, ()):
            follower.ended = True
            follower.wake.set()

    @asynccontextmanager
    async def follow(self, job_id: JobId) -> AsyncIterator[Follower]:
        follower = Follower()
        self._followers.setdefault(job_id, set()).add(follower)
        try:
            yield follower
        finally:
            followers = self._followers.get(job_id)
            if followers is not None:
                followers.discard(follower)
                if not followers:
                    del self._followers[job_id]


async def _stored(store: LogStore, job_id: JobId, after: int) -> AsyncIterator[LogChunk]:
    while True:
        page = await store.read_logs(job_id, after=after, limit=_PAGE)
        for chunk in page:
            yield chunk
            after = chunk.sequence
        if len(page) < _PAGE:
            return


async def read_logs(
    store: LogStore,
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
    async with hub.follow(job_id) as follower:
        follower.ended = await job_ended()
        while True:
            follower.wake.clear()
            ended = follower.ended  # read before the store: chunks stored before the end
            async for chunk in _stored(store, job_id, last):
                yield chunk
                last = chunk.sequence
            if ended:
                return
            await follower.wake.wait()
