"""Failure reasons: short machine-readable words plus the exit code ``hodei run`` maps them to.

A job's failure carries a ``reason`` (one of these words) and a human ``message`` that
says what happened and what to do. The words follow Kubernetes' own vocabulary where one
exists, so a user who knows ``kubectl describe`` recognises them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

NON_ZERO_EXIT: Final = "NonZeroExit"
DEADLINE_EXCEEDED: Final = "DeadlineExceeded"
CANCELLED: Final = "Cancelled"
WORKER_LOST: Final = "WorkerLost"
UNSCHEDULABLE: Final = "Unschedulable"
ERR_IMAGE_PULL: Final = "ErrImagePull"
IMAGE_PULL_BACK_OFF: Final = "ImagePullBackOff"
CREATE_CONTAINER_CONFIG_ERROR: Final = "CreateContainerConfigError"
OOM_KILLED: Final = "OOMKilled"
EVICTED: Final = "Evicted"
CONTAINER_EXITED: Final = "ContainerExited"
PENDING_TIMEOUT: Final = "PendingTimeout"
PROVIDER_ERROR: Final = "ProviderError"
NO_PROVIDER: Final = "NoProvider"
COMMAND_NOT_FOUND: Final = "CommandNotFound"
START_ERROR: Final = "StartError"

# Reasons that mean "the platform could not run it" (hodei run exits 125, see exitcodes).
PLATFORM_REASONS: Final = frozenset(
    {
        WORKER_LOST,
        UNSCHEDULABLE,
        ERR_IMAGE_PULL,
        IMAGE_PULL_BACK_OFF,
        CREATE_CONTAINER_CONFIG_ERROR,
        EVICTED,
        CONTAINER_EXITED,
        PENDING_TIMEOUT,
        PROVIDER_ERROR,
        NO_PROVIDER,
    }
)

# Of those, the ones worth another attempt when the job allows it: a new worker may work.
RETRYABLE_REASONS: Final = frozenset({WORKER_LOST, EVICTED, PROVIDER_ERROR})


@dataclass(frozen=True)
class Failure:
    """Why a job did not succeed: a reason word, a message for people and, when the
    worker's process did end with one (e.g. 137 for OOMKilled), its exit code."""

    reason: str
    message: str
    exit_code: int | None = None

    def __str__(self) -> str:
        return f"{self.reason}: {self.message}" if self.message else self.reason
