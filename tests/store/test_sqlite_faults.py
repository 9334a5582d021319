"""The SQLite store's faults, produced for real: what kind each is, and recovery."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hodei.domain.ids import JobId
from hodei.domain.jobs import Job, JobSpec
from hodei.domain.logs import LogChunk, LogStream
from hodei.domain.states import JobState
from hodei.store import SqliteStore, StoreError
from hodei.store.sqlite import fault_kind


def job(number: int) -> Job:
    return Job(JobId(f"j-{number}"), JobSpec(command=("true",)), JobState.QUEUED, datetime.now(UTC))


async def test_a_full_database_is_a_disk_full_fault_and_recovers(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "hodei.db")
    await store.open()
    try:
        await store.save_job(job(1))
        path = str(tmp_path / "hodei.db")
        with sqlite3.connect(path) as other:  # what a full disk does: no page can be added
            pages = other.execute("PRAGMA page_count").fetchone()[0]
        await store._run(lambda db: db.execute(f"PRAGMA max_page_count = {pages + 1}"))
        chunk = LogChunk(JobId("j-1"), 1, LogStream.STDOUT, b"x" * 200_000)
        with pytest.raises(StoreError) as full:
            await store.append_logs([chunk])
        assert full.value.kind == "disk full"
        assert "database or disk is full" in str(full.value)
        assert (await store.get_job(JobId("j-1"))) is not None  # reads still work
        await store._run(lambda db: db.execute("PRAGMA max_page_count = 1073741823"))
        await store.append_logs([chunk])  # space is back: the same write succeeds
        assert await store.last_log_sequence(JobId("j-1")) == 1
    finally:
        await store.close()


async def test_a_lock_held_past_the_busy_timeout_is_a_locked_fault(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "hodei.db")
    await store.open()
    holder = sqlite3.connect(tmp_path / "hodei.db", isolation_level=None)
    try:
        await store._run(lambda db: db.execute("PRAGMA busy_timeout = 50"))
        holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        with pytest.raises(StoreError) as locked:
            await store.ping()  # readiness writes, so it notices
        assert locked.value.kind == "locked"
        holder.execute("ROLLBACK")
        await store.ping()
    finally:
        holder.close()
        await store.close()


def test_fault_kinds_follow_sqlite_result_codes() -> None:
    def error(name: str) -> sqlite3.Error:
        exc = sqlite3.OperationalError("x")
        exc.sqlite_errorname = name
        return exc

    assert fault_kind(error("SQLITE_FULL")) == "disk full"
    assert fault_kind(error("SQLITE_IOERR_WRITE")) == "I/O error"
    assert fault_kind(error("SQLITE_BUSY")) == "locked"
    assert fault_kind(error("SQLITE_LOCKED_SHAREDCACHE")) == "locked"
    assert fault_kind(error("SQLITE_CORRUPT")) == "error"
