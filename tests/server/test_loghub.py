"""Stored-then-live log reading: no loss or duplication at the switch."""

from __future__ import annotations

import asyncio

from hodei.domain.ids import JobId
from hodei.domain.logs import LogChunk, LogStream
from hodei.server.events import JobEvents
from hodei.server.loghub import LogHub, read_logs
from hodei.store import MemoryStore
from hodei.store.base import Store
from tests.fixtures.waiting import eventually

J = JobId("j-1")


def chunk(seq: int) -> LogChunk:
    return LogChunk(J, seq, LogStream.STDOUT, f"{seq}\n".encode())


async def store_with(*seqs: int) -> MemoryStore:
    store = MemoryStore()
    await store.open()
    await store.append_logs([chunk(s) for s in seqs])
    return store


async def collect(
    store: Store, hub: LogHub, *, follow: bool, start: int = 0, ended: bool = False
) -> list[int]:
    async def job_ended() -> bool:
        return ended

    return [
        c.sequence
        async for c in read_logs(
            store, hub, J, from_sequence=start, follow=follow, job_ended=job_ended
        )
    ]


async def test_without_follow_reads_stored_from_sequence() -> None:
    store = await store_with(1, 2, 3)
    assert await collect(store, LogHub(), follow=False) == [1, 2, 3]
    assert await collect(store, LogHub(), follow=False, start=2) == [2, 3]


async def test_follow_of_finished_job_returns_stored() -> None:
    store = await store_with(*range(1, 600))
    assert await collect(store, LogHub(), follow=True, ended=True) == list(range(1, 600))


async def test_follow_joins_stored_and_live_without_gaps_or_duplicates() -> None:
    store = await store_with(1, 2)
    hub = LogHub()
    reader = asyncio.create_task(collect(store, hub, follow=True))
    await eventually(lambda: hub.following(J) == 1)
    await store.append_logs([chunk(3)])
    hub.publish(J)
    await store.append_logs([chunk(4), chunk(5), chunk(3)])  # 3 again: a re-sent batch
    hub.publish(J)
    hub.publish(J)
    await store.append_logs([chunk(6)])  # stored, then the job ends before a publish
    hub.close(J)
    assert await reader == [1, 2, 3, 4, 5, 6]
    assert hub.following(J) == 0


async def test_follower_of_a_job_that_ended_before_it_subscribed_returns() -> None:
    store = await store_with(1)
    assert await collect(store, LogHub(), follow=True, ended=True, start=1) == [1]


async def test_job_events_fan_out_to_subscribers() -> None:
    from datetime import UTC, datetime

    from hodei.domain.jobs import Job, JobSpec
    from hodei.domain.states import JobState

    events = JobEvents()
    view = Job(J, JobSpec(command=("x",)), JobState.QUEUED, datetime.now(UTC)).waiting("waiting")
    async with events.subscribe(J) as first, events.subscribe(J) as second:
        events.publish(view)
        assert first.get_nowait() == view == second.get_nowait()
    events.publish(view)  # no subscribers: dropped
