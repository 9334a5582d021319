"""Job states and the only transitions allowed between them.

Every state change in the control plane goes through :func:`transition`, so an illegal
move (say, a finished job becoming RUNNING again because a late message arrived) is
refused in one place instead of being guarded ad hoc by each caller.
"""

from __future__ import annotations

import enum


class JobState(enum.Enum):
    QUEUED = "QUEUED"
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    TIMED_OUT = "TIMED_OUT"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATES


TERMINAL_STATES = frozenset(
    {JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED, JobState.TIMED_OUT}
)

# QUEUED again from STARTING/RUNNING is a retry after a platform failure (lost worker).
_ALLOWED: dict[JobState, frozenset[JobState]] = {
    JobState.QUEUED: frozenset({JobState.STARTING, JobState.FAILED, JobState.CANCELLED}),
    JobState.STARTING: frozenset(
        {
            JobState.RUNNING,
            JobState.QUEUED,
            JobState.FAILED,
            JobState.CANCELLED,
            JobState.TIMED_OUT,
        }
    ),
    JobState.RUNNING: frozenset(
        {
            JobState.SUCCEEDED,
            JobState.QUEUED,
            JobState.FAILED,
            JobState.CANCELLED,
            JobState.TIMED_OUT,
        }
    ),
    JobState.SUCCEEDED: frozenset(),
    JobState.FAILED: frozenset(),
    JobState.CANCELLED: frozenset(),
    JobState.TIMED_OUT: frozenset(),
}


class IllegalTransition(ValueError):
    """Raised when a job would move between two states that are not connected."""

    def __init__(self, current: JobState, target: JobState) -> None:
        super().__init__(f"illegal job state transition {current.value} -> {target.value}")
        self.current = current
        self.target = target


def can_transition(current: JobState, target: JobState) -> bool:
    """Whether ``current -> target`` is a legal move."""
    return target in _ALLOWED[current]


def transition(current: JobState, target: JobState) -> JobState:
    """Return ``target`` if the move is legal, else raise :class:`IllegalTransition`."""
    if not can_transition(current, target):
        raise IllegalTransition(current, target)
    return target
