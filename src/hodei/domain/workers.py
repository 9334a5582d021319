"""The control plane's record of a worker: which job attempt it serves and how it is doing.

Kept apart from the provider's live view (:class:`hodei.providers.base.WorkerStatus`)
because it must survive a restart: after one, these records say which workers this
control plane created and for which job, so reconnecting agents can be recognised.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from hodei.domain.ids import JobId, WorkerId


@dataclass(frozen=True)
class WorkerRecord:
    """One worker, created for one attempt of one job."""

    id: WorkerId
    job_id: JobId
    provider: str
    attempt: int
    created_at: datetime
    state: str = "PENDING"  # a WorkerPhase value: PENDING, RUNNING, EXITED, FAILED, GONE
    name: str | None = None  # pod name or process id
    registered_at: datetime | None = None  # when its agent first connected
    reason: str | None = None
    message: str | None = None
    # Added to the agent's log sequences (which start at 1 for every attempt) so the
    # job's log stays one gap-free sequence across retries.
    log_offset: int = 0

    @property
    def active(self) -> bool:
        """Whether the worker may still exist and counts against provider capacity."""
        return self.state in ("PENDING", "RUNNING")

    def updated(self, **changes: object) -> WorkerRecord:
        """A copy with ``changes`` applied."""
        return replace(self, **changes)  # type: ignore[arg-type]
