"""One behavioural suite for every Store implementation (SQLite file, SQLite :memory:, memory)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from hodei.domain.ids import JobId, WorkerId
from hodei.domain.jobs import Attempt, Job, JobSpec, Resources, SecretKeyRef
from hodei.domain.logs import LogChunk, LogStream
from hodei.domain.reasons import Reason
from hodei.domain.states import JobState
from hodei.domain.stdio import TerminalSize
from hodei.domain.workers import WorkerPhase, WorkerRecord
from hodei.store import MemoryStore, SqliteStore, Store, StoreError, TokenKind, TokenRecord
from hodei.store.base import JobStore, LogStore, MetaStore, TokenStore, WorkerStore
from hodei.store.memory import (
    MemoryJobStore,
    MemoryLogStore,
    MemoryMetaStore,
    MemoryTokenStore,
    MemoryWorkerStore,
)

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.fixture(params=["sqlite-file", "sqlite-memory", "memory"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    impl: Store
    if request.param == "sqlite-file":
        impl = SqliteStore(tmp_path / "sub" / "hodei.db")
    elif request.param == "sqlite-memory":
        impl = SqliteStore(":memory:")
    else:
        impl = MemoryStore()
    await impl.open()
    yield impl
    await impl.close()


def job(n: int, state: JobState = JobState.QUEUED, **changes: Any) -> Job:
    spec = JobSpec(
        command=("echo", str(n)),
        env={"A": "1"},
        resources=Resources(cpu_request="100m", memory_limit="1Gi"),
        timeout_seconds=2.5,
        labels={"team": "x"},
        max_attempts=3,
        profile="gpu",
        secret_env={"TOKEN": SecretKeyRef("api", "token")},
    )
    return Job(
        id=JobId(f"j-{n}"), spec=spec, state=state, created_at=T0 + timedelta(seconds=n), **changes
    )


async def test_job_round_trips_every_field(store: Store) -> None:
    full = job(
        1,
        JobState.FAILED,
        attempt=2,
        exit_code=3,
        reason=Reason("NonZeroExit"),
        message="exit code 3",
        started_at=T0,
        finished_at=T0 + timedelta(seconds=9),
        worker_id=WorkerId("w-1"),
        provider="local",
        attempts=(
            Attempt(1, WorkerId("w-0"), Reason("Evicted"), "Eviction API: evicting", T0, True),
            Attempt(2, WorkerId("w-1"), Reason("NonZeroExit"), "exit code 3", T0, False),
        ),
    )
    await store.save_job(full)
    assert await store.get_job(full.id) == full
    waiting = job(2, JobState.STARTING, worker_id=WorkerId("w-2")).waiting("Unschedulable: 0/3")
    await store.save_job(waiting)
    stored = await store.get_job(waiting.id)
    assert stored is not None and stored.waiting_reason == "Unschedulable: 0/3"
    shell = Job(JobId("j-s"), JobSpec(shell="echo $A"), JobState.QUEUED, T0)
    await store.save_job(shell)
    assert await store.get_job(shell.id) == shell
    terminal = JobSpec(
        command=("sh",), stdin=True, tty=True, tty_size=TerminalSize(30, 90), workdir="/w"
    )
    interactive = Job(JobId("j-t"), terminal, JobState.QUEUED, T0)
    await store.save_job(interactive)
    assert await store.get_job(interactive.id) == interactive
    assert await store.get_job(JobId("j-missing")) is None


async def test_list_jobs_orders_filters_and_limits(store: Store) -> None:
    for n in range(5):
        await store.save_job(job(n, JobState.SUCCEEDED if n % 2 else JobState.QUEUED))
    # An update keeps the job's place in submission order.
    await store.save_job(job(0, JobState.STARTING))
    assert [j.id for j in await store.list_jobs()] == ["j-4", "j-3", "j-2", "j-1", "j-0"]
    assert [j.id for j in await store.list_jobs(oldest_first=True, limit=2)] == ["j-0", "j-1"]
    queued = await store.list_jobs(states=[JobState.QUEUED, JobState.STARTING], oldest_first=True)
    assert [j.id for j in queued] == ["j-0", "j-2", "j-4"]
    assert await store.count_jobs() == {
        JobState.STARTING: 1,
        JobState.QUEUED: 2,
        JobState.SUCCEEDED: 2,
    }


async def test_list_jobs_selects_by_labels_with_dotted_and_prefixed_keys(store: Store) -> None:
    from dataclasses import replace

    labelled = [
        {"team": "x", "app.kubernetes.io/name": "web"},
        {"team": "y", "app.kubernetes.io/name": "web"},
        {"team": "x"},
    ]
    for n, labels in enumerate(labelled):
        base = job(n)
        await store.save_job(replace(base, spec=replace(base.spec, labels=labels)))
    web_x = await store.list_jobs(labels={"team": "x", "app.kubernetes.io/name": "web"})
    assert [j.id for j in web_x] == ["j-0"]
    assert [j.id for j in await store.list_jobs(labels={"team": "x"})] == ["j-2", "j-0"]
    assert await store.list_jobs(labels={"team": "z"}) == []


async def test_list_jobs_pages_with_a_cursor_in_either_order(store: Store) -> None:
    for n in range(5):
        await store.save_job(job(n, JobState.SUCCEEDED if n % 2 else JobState.QUEUED))
    first = await store.list_jobs(limit=2)
    assert [j.id for j in first] == ["j-4", "j-3"]
    second = await store.list_jobs(limit=2, after=first[-1].id)
    assert [j.id for j in second] == ["j-2", "j-1"]
    assert [j.id for j in await store.list_jobs(limit=2, after=JobId("j-1"))] == ["j-0"]
    oldest = await store.list_jobs(oldest_first=True, after=JobId("j-2"))
    assert [j.id for j in oldest] == ["j-3", "j-4"]
    # The cursor combines with a state filter: the cursor job itself need not match.
    queued = await store.list_jobs(states=[JobState.QUEUED], after=JobId("j-3"))
    assert [j.id for j in queued] == ["j-2", "j-0"]
    assert await store.list_jobs(after=JobId("j-unknown")) == []


async def test_meta_default_is_set_once(store: Store) -> None:
    assert await store.get_meta("instance") is None
    assert await store.set_meta_default("instance", "a") == "a"
    assert await store.set_meta_default("instance", "b") == "a"
    assert await store.get_meta("instance") == "a"


async def test_workers_round_trip_and_active_filter(store: Store) -> None:
    first = WorkerRecord(
        WorkerId("w-1"), JobId("j-1"), "local", 1, T0, name="pid 12", registered_at=T0, log_offset=7
    )
    second = WorkerRecord(WorkerId("w-2"), JobId("j-2"), "kubernetes", 1, T0 + timedelta(seconds=1))
    await store.save_worker(first)
    await store.save_worker(second)
    assert await store.get_worker(first.id) == first
    gone = second.updated(state=WorkerPhase.GONE, reason=Reason("Evicted"), message="node drained")
    await store.save_worker(gone)
    assert await store.get_worker(second.id) == gone
    assert await store.list_workers() == [first, gone]
    assert await store.list_workers(active_only=True) == [first]
    assert await store.get_worker(WorkerId("w-none")) is None


async def test_token_is_used_only_once(store: Store) -> None:
    record = TokenRecord("abc", WorkerId("w-1"), TokenKind.REGISTER, T0)
    await store.add_token(record)
    assert await store.get_token("abc") == record
    assert await store.use_token("abc") is True
    assert await store.use_token("abc") is False
    assert (await store.get_token("abc")).used is True  # type: ignore[union-attr]
    assert await store.use_token("unknown") is False
    assert await store.get_token("unknown") is None


async def test_logs_are_idempotent_ordered_and_binary(store: Store) -> None:
    job_id = JobId("j-1")
    binary = bytes(range(256))
    await store.append_logs(
        [LogChunk(job_id, 2, LogStream.STDERR, binary), LogChunk(job_id, 1, LogStream.STDOUT, b"a")]
    )
    await store.append_logs(
        [LogChunk(job_id, 2, LogStream.STDOUT, b"dup"), LogChunk(job_id, 3, LogStream.STDOUT, b"")]
    )
    await store.append_logs([])
    chunks = await store.read_logs(job_id)
    assert [(c.sequence, c.stream, c.data) for c in chunks] == [
        (1, LogStream.STDOUT, b"a"),
        (2, LogStream.STDERR, binary),
        (3, LogStream.STDOUT, b""),
    ]
    assert [c.sequence for c in await store.read_logs(job_id, after=1, limit=1)] == [2]
    assert await store.count_logs(job_id, up_to=2) == 2
    assert await store.last_log_sequence(job_id) == 3
    assert await store.last_log_sequence(JobId("j-none")) == 0
    assert await store.read_logs(JobId("j-none")) == []


async def test_closed_store_fails_ping(store: Store) -> None:
    await store.ping()
    await store.close()
    with pytest.raises(StoreError):
        await store.ping()
    await store.open()


async def test_sqlite_file_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "hodei.db"
    first = SqliteStore(path)
    await first.open()
    await first.save_job(job(1))
    await first.append_logs([LogChunk(JobId("j-1"), 1, LogStream.STDOUT, b"x" * 100_000)])
    await first.close()
    again = SqliteStore(path)
    await again.open()
    try:
        assert await again.get_job(JobId("j-1")) == job(1)
        assert (await again.read_logs(JobId("j-1")))[0].data == b"x" * 100_000
    finally:
        await again.close()


async def test_unwritable_sqlite_path_is_a_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StoreError, match="cannot open SQLite store"):
        await SqliteStore(blocker / "hodei.db").open()


def _public(cls: type) -> set[str]:
    """Public names a class defines or inherits (protocol slices included)."""
    owners = [c for c in cls.__mro__ if c.__module__.startswith("hodei.")]
    return {name for owner in owners for name in vars(owner) if not name.startswith("_")}


def test_job_document_without_the_terminal_fields_still_reads() -> None:
    from hodei.store.codec import job_from_json, job_to_json

    older = job(4)
    document = job_to_json(older)
    for field in (', "stdin": false', ', "tty": false', ', "tty_size": null', ', "workdir": null'):
        assert field in document
        document = document.replace(field, "")
    assert "stdin" not in document and "workdir" not in document
    assert job_from_json(document) == older


def test_job_document_without_waiting_reason_still_reads() -> None:
    from hodei.store.codec import job_from_json, job_to_json

    older = job(3)
    document = job_to_json(older).replace(', "waiting_reason": null', "")
    assert "waiting_reason" not in document
    assert job_from_json(document) == older


@pytest.mark.parametrize("impl", [SqliteStore, MemoryStore])
def test_implementations_cover_the_interface(impl: type) -> None:
    assert len(_public(Store)) == 19
    assert _public(Store) <= _public(impl)


SLICES = [
    (JobStore, MemoryJobStore, {"save_job", "get_job", "list_jobs", "count_jobs"}),
    (WorkerStore, MemoryWorkerStore, {"save_worker", "get_worker", "list_workers"}),
    (TokenStore, MemoryTokenStore, {"add_token", "get_token", "use_token"}),
    (LogStore, MemoryLogStore, {"append_logs", "read_logs", "last_log_sequence", "count_logs"}),
    (MetaStore, MemoryMetaStore, {"get_meta", "set_meta_default"}),
]


@pytest.mark.parametrize(("protocol", "fake", "methods"), SLICES)
def test_each_slice_has_its_fake_and_the_whole_store_has_every_slice(
    protocol: type, fake: type, methods: set[str]
) -> None:
    assert _public(protocol) == methods
    assert _public(fake) == methods
    assert protocol in Store.__mro__
    assert fake in MemoryStore.__mro__
    assert methods <= _public(SqliteStore)


async def test_a_slice_fake_serves_on_its_own() -> None:
    jobs = MemoryJobStore()
    await jobs.save_job(job(1))
    await jobs.save_job(job(2, JobState.RUNNING))
    assert [j.id for j in await jobs.list_jobs(states=[JobState.QUEUED])] == [JobId("j-1")]
    assert await jobs.count_jobs() == {JobState.QUEUED: 1, JobState.RUNNING: 1}
    logs = MemoryLogStore()
    await logs.append_logs([LogChunk(JobId("j-1"), 1, LogStream.STDOUT, b"x")])
    assert await logs.last_log_sequence(JobId("j-1")) == 1
