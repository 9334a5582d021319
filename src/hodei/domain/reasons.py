"""Failure reasons: short machine-readable words plus the exit code ``hodei run`` maps them to.

A job's failure carries a ``reason`` (one of these words) and a human ``message`` that
says what happened and what to do. The words follow Kubernetes' own vocabulary where one
exists, so a user who knows ``kubectl describe`` recognises them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final, NewType

Reason = NewType("Reason", str)
"""A failure reason word. The named ones below are Hodei's; a provider may pass on one its
platform gave (a Kubernetes container waiting reason such as ``InvalidImageName``)
through :func:`platform_reason`. Either way it is a word, never a sentence: the sentence
goes in the failure's message."""


def platform_reason(word: str) -> Reason:
    """A reason word reported by the platform (Kubernetes), kept as it is spelled there."""
    return Reason(word)


# How an attempt that succeeded ended (Kubernetes' word for a container that exited 0).
COMPLETED: Final = Reason("Completed")
NON_ZERO_EXIT: Final = Reason("NonZeroExit")
DEADLINE_EXCEEDED: Final = Reason("DeadlineExceeded")
CANCELLED: Final = Reason("Cancelled")
WORKER_LOST: Final = Reason("WorkerLost")
UNSCHEDULABLE: Final = Reason("Unschedulable")
ERR_IMAGE_PULL: Final = Reason("ErrImagePull")
IMAGE_PULL_BACK_OFF: Final = Reason("ImagePullBackOff")
CREATE_CONTAINER_CONFIG_ERROR: Final = Reason("CreateContainerConfigError")
OOM_KILLED: Final = Reason("OOMKilled")
EVICTED: Final = Reason("Evicted")
PREEMPTED: Final = Reason("Preempted")
QUOTA_EXCEEDED: Final = Reason("QuotaExceeded")
CONTAINER_EXITED: Final = Reason("ContainerExited")
PENDING_TIMEOUT: Final = Reason("PendingTimeout")
PROVIDER_ERROR: Final = Reason("ProviderError")
NO_PROVIDER: Final = Reason("NoProvider")
COMMAND_NOT_FOUND: Final = Reason("CommandNotFound")
START_ERROR: Final = Reason("StartError")

# Reasons that mean "the platform could not run it" (hodei run exits 125, see exitcodes).
PLATFORM_REASONS: Final = frozenset(
    {
        WORKER_LOST,
        UNSCHEDULABLE,
        ERR_IMAGE_PULL,
        IMAGE_PULL_BACK_OFF,
        CREATE_CONTAINER_CONFIG_ERROR,
        EVICTED,
        PREEMPTED,
        QUOTA_EXCEEDED,
        CONTAINER_EXITED,
        PENDING_TIMEOUT,
        PROVIDER_ERROR,
        NO_PROVIDER,
    }
)

# Of those, the ones where the platform took a working job away (an eviction, a preemption,
# a pod deleted by someone else, a lost node). Never the user's fault: the job is retried on
# a new worker up to the platform's own limit (HODEI_PLATFORM_RETRIES), without using up
# the job's max_attempts.
DISRUPTION_REASONS: Final = frozenset({WORKER_LOST, EVICTED, PREEMPTED})

# Failures worth another attempt when the job's max_attempts allows it: a new worker may work.
RETRYABLE_REASONS: Final = frozenset({PROVIDER_ERROR})


class StartFailure(enum.Enum):
    """Why the agent could not start a job's command, decided from the exec error's errno
    (POSIX ``execve``) where it happens, and sent as a field of the result."""

    COMMAND_NOT_FOUND = "COMMAND_NOT_FOUND"  # ENOENT: no such program
    NOT_EXECUTABLE = "NOT_EXECUTABLE"  # EACCES, ENOEXEC, ...: found but cannot be run
    AGENT_ERROR = "AGENT_ERROR"  # the agent itself failed before the command ran

    @property
    def reason(self) -> Reason:
        """The job's failure reason for this kind of start failure."""
        return COMMAND_NOT_FOUND if self is StartFailure.COMMAND_NOT_FOUND else START_ERROR


@dataclass(frozen=True)
class Failure:
    """Why a job did not succeed: a reason word, a message for people and, when the
    worker's process did end with one (e.g. 137 for OOMKilled), its exit code."""

    reason: Reason
    message: str
    exit_code: int | None = None

    def __str__(self) -> str:
        return f"{self.reason}: {self.message}" if self.message else self.reason
