"""In-memory stores: the reference implementation of each store protocol, for tests and
for control planes that need no durability. Nothing survives the process.

One fake per slice of :mod:`hodei.store.base` (:class:`MemoryJobStore` for a job book
test, :class:`MemoryLogStore` for a log reader test, ...), and :class:`MemoryStore`,
which is all of them at once behind the whole :class:`~hodei.store.base.Store`."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace

from hodei.domain.ids import JobId, WorkerId
from hodei.domain.jobs import Job
from hodei.domain.logs import LogChunk
from hodei.domain.states import JobState
from hodei.domain.workers import WorkerRecord
from hodei.store.base import StoreError, TokenRecord


class MemoryJobStore:
    """:class:`hodei.store.base.JobStore` in a dictionary (insertion order = submission)."""

    def __init__(self) -> None:
        self._jobs: dict[JobId, Job] = {}

    async def save_job(self, job: Job) -> None:
        self._jobs[job.id] = job

    async def get_job(self, job_id: JobId) -> Job | None:
        return self._jobs.get(job_id)

    async def list_jobs(
        self,
        *,
        states: Collection[JobState] | None = None,
        labels: Mapping[str, str] | None = None,
        limit: int | None = None,
        oldest_first: bool = False,
        after: JobId | None = None,
    ) -> list[Job]:
        jobs = list(self._jobs.values())
        if not oldest_first:
            jobs.reverse()
        if after is not None:
            ids = [j.id for j in jobs]
            jobs = jobs[ids.index(after) + 1 :] if after in ids else []
        jobs = [
            j
            for j in jobs
            if (states is None or j.state in states)
            and all(j.spec.labels.get(k) == v for k, v in (labels or {}).items())
        ]
        return jobs[:limit] if limit is not None else jobs

    async def count_jobs(self) -> dict[JobState, int]:
        return dict(Counter(job.state for job in self._jobs.values()))


class MemoryWorkerStore:
    """:class:`hodei.store.base.WorkerStore` in a dictionary."""

    def __init__(self) -> None:
        self._workers: dict[WorkerId, WorkerRecord] = {}

    async def save_worker(self, record: WorkerRecord) -> None:
        self._workers[record.id] = record

    async def get_worker(self, worker_id: WorkerId) -> WorkerRecord | None:
        return self._workers.get(worker_id)

    async def list_workers(self, *, active_only: bool = False) -> list[WorkerRecord]:
        return [w for w in self._workers.values() if w.active or not active_only]


class MemoryTokenStore:
    """:class:`hodei.store.base.TokenStore` in a dictionary."""

    def __init__(self) -> None:
        self._tokens: dict[str, TokenRecord] = {}

    async def add_token(self, record: TokenRecord) -> None:
        self._tokens[record.token_hash] = record

    async def get_token(self, token_hash: str) -> TokenRecord | None:
        return self._tokens.get(token_hash)

    async def use_token(self, token_hash: str) -> bool:
        record = self._tokens.get(token_hash)
        if record is None or record.used:
            return False
        self._tokens[token_hash] = replace(record, used=True)
        return True


class MemoryLogStore:
    """:class:`hodei.store.base.LogStore`: chunks by job and sequence."""

    def __init__(self) -> None:
        self._logs: dict[JobId, dict[int, LogChunk]] = {}

    async def append_logs(self, chunks: Sequence[LogChunk]) -> None:
        for chunk in chunks:
            self._logs.setdefault(chunk.job_id, {}).setdefault(chunk.sequence, chunk)

    async def read_logs(
        self, job_id: JobId, *, after: int = 0, limit: int = 1000
    ) -> list[LogChunk]:
        stored = self._logs.get(job_id, {})
        return [stored[s] for s in sorted(s for s in stored if s > after)][:limit]

    async def last_log_sequence(self, job_id: JobId) -> int:
        return max(self._logs.get(job_id, {}), default=0)

    async def count_logs(self, job_id: JobId, *, up_to: int) -> int:
        return sum(1 for s in self._logs.get(job_id, {}) if s <= up_to)


class MemoryMetaStore:
    """:class:`hodei.store.base.MetaStore` in a dictionary."""

    def __init__(self) -> None:
        self._meta: dict[str, str] = {}

    async def get_meta(self, key: str) -> str | None:
        return self._meta.get(key)

    async def set_meta_default(self, key: str, value: str) -> str:
        return self._meta.setdefault(key, value)


class MemoryStore(
    MemoryJobStore, MemoryWorkerStore, MemoryTokenStore, MemoryLogStore, MemoryMetaStore
):
    """Every in-memory slice behind the whole :class:`hodei.store.base.Store` interface."""

    def __init__(self) -> None:
        MemoryJobStore.__init__(self)
        MemoryWorkerStore.__init__(self)
        MemoryTokenStore.__init__(self)
        MemoryLogStore.__init__(self)
        MemoryMetaStore.__init__(self)
        self._open = False

    async def open(self) -> None:
        self._open = True

    async def close(self) -> None:
        self._open = False

    async def ping(self) -> None:
        if not self._open:
            raise StoreError("store is closed", kind="closed")
