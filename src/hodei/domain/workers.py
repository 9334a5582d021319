"""The control plane's record of a worker: which job attempt it serves and how it is doing.

Kept apart from the provider's live view (:class:`hodei.providers.base.WorkerStatus`)
because it must survive a restart: after one, these records say which workers this
control plane created and for which job, so reconnecting agents can be recognised.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import datetime

from hodei.domain.ids import JobId, WorkerId
from hodei.domain.reasons import Reason


class WorkerPhase(enum.Enum):
    """Where a worker is in its life, as its provider reports it."""

    PENDING = "PENDING"  # asked for, not running yet (pod Pending, process spawning)
    RUNNING = "RUNNING"  # the worker's container/process is running
    EXITED = "EXITED"  # it stopped on its own; exit_code says how
    FAILED = "FAILED"  # it cannot run or was killed by the platform; reason says why
    GONE = "GONE"  # it no longer exists (deleted, or vanished)

    @property
    def active(self) -> bool:
        """Whether a worker in this phase may still exist and counts against capacity."""
        return self in (WorkerPhase.PENDING, WorkerPhase.RUNNING)


@dataclass(frozen=True)
class WorkerRecord:
    """One worker, created for one attempt of one job."""

    id: WorkerId
    job_id: JobId
    provider: str
    attempt: int
    created_at: datetime
    state: WorkerPhase = WorkerPhase.PENDING
    name: str | None = None  # pod name or process id
    registered_at: datetime | None = None  # when its agent first connected
    reason: Reason | None = None
    message: str | None = None
    # Added to the agent's log sequences (which start at 1 for every attempt) so the
    # job's log stays one gap-free sequence across retries.
    log_offset: int = 0

    @property
    def active(self) -> bool:
        """Whether the worker may still exist and counts against provider capacity."""
        return self.state.active

    def updated(self, **changes: object) -> WorkerRecord:
        """A copy with ``changes`` applied."""
        return replace(self, **changes)  # type: ignore[arg-type]
