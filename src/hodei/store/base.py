"""The store interface: what the control plane persists so it can resume after a restart.

Jobs (with their current attempt), worker records (one per attempt), log chunks, worker
token hashes and a little metadata (the instance id). Each user needs only one slice, so
the interface is five small protocols — :class:`JobStore`, :class:`WorkerStore`,
:class:`TokenStore`, :class:`LogStore`, :class:`MetaStore` — and :class:`Store`, which
adds opening and closing to all five. They speak domain types only, so a PostgreSQL
store can be added next to the SQLite one. ``hodei.store.memory`` has an in-memory fake
for each slice (and one for the whole); every implementation must pass ``tests/store``.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from hodei.domain.ids import JobId, WorkerId
from hodei.domain.jobs import Job
from hodei.domain.logs import LogChunk
from hodei.domain.states import JobState
from hodei.domain.workers import WorkerRecord


class StoreError(RuntimeError):
    """The store cannot be opened or used (file not writable, disk full, closed).

    ``kind`` sorts faults for reporting: ``disk full``, ``I/O error``, ``locked`` (busy
    past the busy timeout), ``closed`` or ``error``."""

    def __init__(self, message: str, *, kind: str = "error") -> None:
        super().__init__(message)
        self.kind = kind


class TokenKind(enum.Enum):
    REGISTER = "register"  # the one-time token a worker is started with
    RESUME = "resume"  # handed out at registration; lets the agent reconnect


@dataclass(frozen=True)
class TokenRecord:
    """A worker credential, stored only as the SHA-256 hash of the secret."""

    token_hash: str
    worker_id: WorkerId
    kind: TokenKind
    expires_at: datetime | None
    used: bool = False


class JobStore(Protocol):
    """Jobs: what the job book reads and writes."""

    async def save_job(self, job: Job) -> None:
        """Insert or replace the job (its position in submission order is kept)."""
        ...

    async def get_job(self, job_id: JobId) -> Job | None: ...

    async def list_jobs(
        self,
        *,
        states: Collection[JobState] | None = None,
        labels: Mapping[str, str] | None = None,
        limit: int | None = None,
        oldest_first: bool = False,
        after: JobId | None = None,
    ) -> list[Job]:
        """Jobs in submission order (newest first unless ``oldest_first``).

        ``labels`` keeps jobs carrying every given label with that exact value (an
        equality selector, as ``kubectl get -l k=v``). ``after`` is a page cursor: only
        jobs listed after that job in this order (an unknown id gives an empty page).
        """
        ...

    async def count_jobs(self) -> dict[JobState, int]:
        """How many jobs are in each state (states without jobs may be absent)."""
        ...


class WorkerStore(Protocol):
    """Worker records: one per attempt, kept so a restart recognises its workers."""

    async def save_worker(self, record: WorkerRecord) -> None: ...

    async def get_worker(self, worker_id: WorkerId) -> WorkerRecord | None: ...

    async def list_workers(self, *, active_only: bool = False) -> list[WorkerRecord]:
        """Worker records, oldest first; ``active_only`` keeps PENDING/RUNNING ones."""
        ...


class TokenStore(Protocol):
    """Worker credentials, as hashes."""

    async def add_token(self, record: TokenRecord) -> None: ...

    async def get_token(self, token_hash: str) -> TokenRecord | None: ...

    async def use_token(self, token_hash: str) -> bool:
        """Mark the token used; True only for the one caller that found it unused."""
        ...


class LogStore(Protocol):
    """Jobs' log chunks, numbered per job."""

    async def append_logs(self, chunks: Sequence[LogChunk]) -> None:
        """Store chunks durably; a chunk whose (job, sequence) exists is ignored."""
        ...

    async def read_logs(
        self, job_id: JobId, *, after: int = 0, limit: int = 1000
    ) -> list[LogChunk]:
        """Chunks with sequence > ``after``, in sequence order, at most ``limit``."""
        ...

    async def last_log_sequence(self, job_id: JobId) -> int:
        """The highest stored sequence of the job's log, 0 when it has none."""
        ...

    async def count_logs(self, job_id: JobId, *, up_to: int) -> int:
        """How many chunks with sequence ≤ ``up_to`` are stored for the job."""
        ...


class MetaStore(Protocol):
    """A few named values of the control plane itself (its instance id)."""

    async def get_meta(self, key: str) -> str | None: ...

    async def set_meta_default(self, key: str, value: str) -> str:
        """Store ``value`` under ``key`` unless a value exists; return the stored one."""
        ...


class Store(JobStore, WorkerStore, TokenStore, LogStore, MetaStore, Protocol):
    """The whole store: every slice, plus opening, closing and a readiness check. All
    methods are coroutines safe to call concurrently from one event loop."""

    async def open(self) -> None:
        """Create or migrate the schema; raises :class:`StoreError`."""
        ...

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """Raise :class:`StoreError` if the store cannot serve requests now, writes
        included (a full disk still lets reads through)."""
        ...
