"""The SQLite store's calls sharing hops to its thread: order, results, faults, close, cancel."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator, Coroutine
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hodei.domain.ids import JobId
from hodei.domain.jobs import Job, JobSpec
from hodei.domain.logs import LogChunk, LogStream
from hodei.domain.states import JobState
from hodei.store import SqliteStore, StoreError

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def job(number: int, message: str | None = None) -> Job:
    return Job(
        JobId(f"j-{number}"),
        JobSpec(command=("true",)),
        JobState.QUEUED,
        T0,
        message=message,
    )


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    impl = SqliteStore(tmp_path / "hodei.db")
    await impl.open()
    yield impl
    await impl.close()


class Blocker:
    """Holds the store's thread inside one call until released, so that the calls made
    meanwhile queue behind it."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, db: sqlite3.Connection) -> str:
        self.entered.set()
        if not self.release.wait(timeout=30):
            raise TimeoutError("the test never released the store's thread")
        return "released"

    async def hold(self, store: SqliteStore) -> asyncio.Task[str]:
        """Start the blocking call and return once the store's thread is inside it."""
        task = asyncio.create_task(store._run(self))
        await asyncio.to_thread(self.entered.wait, 30)
        assert self.entered.is_set()
        return task


async def test_calls_made_in_one_iteration_share_one_hop_and_run_in_order(
    store: SqliteStore,
) -> None:
    await store.save_job(job(0))
    before = store.hops
    # Each read comes right after a write of the same job: it sees that write and not the
    # next one only if the calls ran in the order they were made.
    calls: list[Coroutine[object, object, Job | None]] = []
    for n in range(40):
        calls.append(store.save_job(job(0, message=f"version {n}")))
        calls.append(store.get_job(JobId("j-0")))
    calls.append(store.save_job(job(1)))
    results = await asyncio.gather(*calls)
    # 81 calls, one hop; none when the drain that ran save_job(job(0)) had not yet ended,
    # since it then takes these calls as well.
    assert store.hops - before <= 1
    reads = results[1:80:2]
    assert [read.message for read in reads if read is not None] == [
        f"version {n}" for n in range(40)
    ]
    assert results[0::2] == [None] * 41  # save_job returns nothing
    listed = await store.list_jobs(oldest_first=True)
    assert [j.id for j in listed] == ["j-0", "j-1"]


async def test_calls_made_while_the_thread_is_busy_share_the_next_batch(
    store: SqliteStore,
) -> None:
    blocker = Blocker()
    before = store.hops
    held = await blocker.hold(store)
    waiting = []
    for n in range(5):  # one call per loop iteration
        waiting.append(asyncio.create_task(store.save_job(job(n))))
        await asyncio.sleep(0)
    blocker.release.set()
    assert await held == "released"
    await asyncio.gather(*waiting)
    assert store.hops - before == 1  # the drain running the blocker took them too
    assert [j.id for j in await store.list_jobs(oldest_first=True)] == [f"j-{n}" for n in range(5)]


async def test_a_failing_call_raises_its_own_fault_and_its_neighbours_succeed(
    store: SqliteStore, tmp_path: Path
) -> None:
    await store.save_job(job(1))
    with sqlite3.connect(tmp_path / "hodei.db") as other:  # what a full disk does
        pages = other.execute("PRAGMA page_count").fetchone()[0]
    await store._run(lambda db: db.execute(f"PRAGMA max_page_count = {pages + 1}"))
    big = LogChunk(JobId("j-1"), 1, LogStream.STDOUT, b"x" * 200_000)
    before = store.hops
    results = await asyncio.gather(
        store.get_job(JobId("j-1")),
        store.append_logs([big]),  # needs many more pages: disk full
        store.save_job(job(1, message="updated")),  # rewrites a page it already has
        store._run(lambda db: db.execute("SELECT * FROM no_such_table")),
        store.last_log_sequence(JobId("j-1")),
        store.get_job(JobId("j-1")),
        return_exceptions=True,
    )
    assert store.hops - before <= 1  # as in the first test
    first, full, saved, missing, sequence, last = results
    assert isinstance(first, Job) and first.message is None
    assert isinstance(full, StoreError) and full.kind == "disk full"
    assert "database or disk is full" in str(full)
    assert saved is None
    assert isinstance(missing, StoreError) and missing.kind == "error"
    assert "no such table: no_such_table" in str(missing)
    assert sequence == 0  # the failed batch of logs left nothing behind
    assert isinstance(last, Job) and last.message == "updated"


async def test_close_runs_the_calls_made_before_it_and_refuses_later_ones(
    tmp_path: Path,
) -> None:
    store = SqliteStore(tmp_path / "hodei.db")
    await store.open()
    await asyncio.gather(*(store.save_job(job(n)) for n in range(10)), store.close())
    with pytest.raises(StoreError) as closed:
        await store.get_job(JobId("j-0"))
    assert closed.value.kind == "closed"
    again = SqliteStore(tmp_path / "hodei.db")
    await again.open()
    try:
        assert len(await again.list_jobs()) == 10
    finally:
        await again.close()


async def test_a_cancelled_caller_does_not_break_its_batch(store: SqliteStore) -> None:
    blocker = Blocker()
    held = await blocker.hold(store)
    first = asyncio.create_task(store.save_job(job(1)))
    dropped = asyncio.create_task(store.save_job(job(2)))
    last = asyncio.create_task(store.get_job(JobId("j-1")))
    await asyncio.sleep(0)  # the three are queued behind the blocker
    dropped.cancel()
    held.cancel()  # its call is already running: it finishes, its result is dropped
    blocker.release.set()
    await first
    fetched = await last
    assert fetched is not None and fetched.id == "j-1"
    for task in (dropped, held):
        with pytest.raises(asyncio.CancelledError):
            await task
    # A call cancelled before its turn is not run, as with an executor's queue.
    assert await store.get_job(JobId("j-2")) is None
    assert await store.get_job(JobId("j-1")) == job(1)


async def test_no_call_is_stranded_when_it_arrives_as_a_drain_ends(store: SqliteStore) -> None:
    # Each call is made the moment the previous result arrives, which is when the drain
    # that delivered it is deciding whether the queue is empty.
    for n in range(300):
        await store.save_job(job(n % 7, message=str(n)))
    fetched = await store.get_job(JobId("j-5"))  # 299 % 7 == 5
    assert fetched is not None and fetched.message == "299"
