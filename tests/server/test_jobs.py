"""The job book over the job-store fake alone: no server, no other store slice."""

from __future__ import annotations

from hodei.domain.jobs import JobSpec
from hodei.domain.states import JobState
from hodei.server.events import JobEvents
from hodei.server.jobs import JobBook
from hodei.store.memory import MemoryJobStore


async def test_waiting_reason_is_persisted_published_and_cleared_by_a_state_change() -> None:
    store, events = MemoryJobStore(), JobEvents()
    book = JobBook(store, events)
    job = await book.submit(JobSpec(command=("true",)), provider="local")
    async with events.subscribe(job.id) as changes:
        async with book.lock(job.id):
            await book.set_waiting(job.id, "no free worker slot")
            await book.set_waiting(job.id, "no free worker slot")  # same reason: no event
        stored = await store.get_job(job.id)
        assert stored is not None and stored.waiting_reason == "no free worker slot"
        assert changes.get_nowait().waiting_reason == "no free worker slot"
        assert changes.empty()
        await book.save(stored.moved_to(JobState.CANCELLED))
        assert changes.get_nowait().waiting_reason is None
    assert book.active() == []
    assert book.counts() == {JobState.QUEUED: 0, JobState.CANCELLED: 1}
