"""The JSON shapes of jobs and workers: one definition for every machine-readable output.

``hodei jobs list|show -o json``, ``hodei workers list -o json`` and the HTTP API under
``/api/v1`` print the same objects, so a script written against one works with the other.
The shape is a public surface: every job object carries at least ``id``, ``state``,
``exit_code``, ``reason``, ``message``, ``created_at``, ``started_at``, ``finished_at`` and
``worker_id``; missing values are ``null``; times are RFC 3339 in UTC (``…Z``).
"""

from __future__ import annotations

import shlex
from datetime import UTC, datetime
from typing import Any

from hodei.domain import exitcodes
from hodei.domain.jobs import Attempt, Job
from hodei.domain.workers import WorkerRecord

__all__ = ["attempt_dict", "command_text", "job_dict", "rfc3339", "worker_dict"]


def rfc3339(value: datetime | None) -> str | None:
    """``2026-01-01T11:55:00Z`` for an aware datetime; ``None`` stays ``None``."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def command_text(job: Job) -> str:
    """The command as a person would type it (``sh -c '…'`` for a shell script)."""
    if job.spec.shell is not None:
        return f"sh -c {shlex.quote(job.spec.shell)}"
    return shlex.join(job.spec.command)


def job_dict(job: Job) -> dict[str, Any]:
    """The JSON object for one job."""
    return {
        "id": job.id,
        "state": job.state.value,
        "exit_code": job.exit_code,
        # What `hodei run` (and `jobs wait`) exits with: the one table in hodei.domain.exitcodes.
        "run_exit_code": (
            exitcodes.exit_code_for(job.state, job.reason, job.exit_code)
            if job.state.terminal
            else None
        ),
        "reason": job.reason,
        "message": job.message,
        "created_at": rfc3339(job.created_at),
        "started_at": rfc3339(job.started_at),
        "finished_at": rfc3339(job.finished_at),
        "worker_id": job.worker_id,
        "provider": job.provider,
        "attempt": job.attempt,
        "command": list(job.spec.command) if job.spec.shell is None else None,
        "command_line": command_text(job),
        "shell": job.spec.shell,
        "labels": dict(job.spec.labels),
        "timeout_seconds": job.spec.timeout_seconds,
        "waiting_reason": job.waiting_reason,
        "image": job.spec.image,
        "resources": {
            "cpu_request": job.spec.resources.cpu_request,
            "cpu_limit": job.spec.resources.cpu_limit,
            "memory_request": job.spec.resources.memory_request,
            "memory_limit": job.spec.resources.memory_limit,
        },
        # Names only: values may be secrets and never leave the control plane this way.
        "env_names": sorted(job.spec.env),
        "max_attempts": job.spec.max_attempts,
        "attempts": [attempt_dict(a) for a in job.attempts],
        "profile": job.spec.profile,
        # References only (NAME -> SECRET:KEY): the kubelet alone ever reads the values.
        "secret_env": {name: str(ref) for name, ref in sorted(job.spec.secret_env.items())},
    }


def attempt_dict(attempt: Attempt) -> dict[str, Any]:
    """The JSON object for one ended attempt: why it ended, and whether the platform took
    it away (``disruption``: retried without using up the job's max_attempts)."""
    return {
        "number": attempt.number,
        "worker_id": attempt.worker_id,
        "reason": attempt.reason,
        "message": attempt.message,
        "finished_at": rfc3339(attempt.finished_at),
        "disruption": attempt.disruption,
    }


def worker_dict(worker: WorkerRecord) -> dict[str, Any]:
    """The JSON object for one worker."""
    return {
        "id": worker.id,
        "job_id": worker.job_id,
        "provider": worker.provider,
        "attempt": worker.attempt,
        "state": worker.state.value,
        "name": worker.name,
        "created_at": rfc3339(worker.created_at),
        "reason": worker.reason,
        "message": worker.message,
    }
