"""Jobs as JSON documents, so stores can keep a whole job in one column.

A job is read far more often whole than by field, and its spec is a nested value; a
document per job keeps the schema small and lets fields be added without migrations.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from hodei.domain.ids import JobId, WorkerId
from hodei.domain.jobs import Attempt, Job, JobSpec, Resources, SecretKeyRef
from hodei.domain.reasons import Reason
from hodei.domain.states import JobState
from hodei.domain.stdio import TerminalSize


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value is not None else None


def spec_to_dict(spec: JobSpec) -> dict[str, Any]:
    r = spec.resources
    return {
        "command": list(spec.command),
        "shell": spec.shell,
        "env": dict(spec.env),
        "image": spec.image,
        "resources": {
            "cpu_request": r.cpu_request,
            "cpu_limit": r.cpu_limit,
            "memory_request": r.memory_request,
            "memory_limit": r.memory_limit,
        },
        "timeout_seconds": spec.timeout_seconds,
        "labels": dict(spec.labels),
        "max_attempts": spec.max_attempts,
        "provider": spec.provider,
        "profile": spec.profile,
        "secret_env": {
            name: {"secret": ref.secret, "key": ref.key} for name, ref in spec.secret_env.items()
        },
        "stdin": spec.stdin,
        "tty": spec.tty,
        "tty_size": None
        if spec.tty_size is None
        else {"rows": spec.tty_size.rows, "columns": spec.tty_size.columns},
        "workdir": spec.workdir,
    }


def spec_from_dict(data: dict[str, Any]) -> JobSpec:
    return JobSpec(
        command=tuple(data["command"]),
        shell=data["shell"],
        env=dict(data["env"]),
        image=data["image"],
        resources=Resources(**data["resources"]),
        timeout_seconds=data["timeout_seconds"],
        labels=dict(data["labels"]),
        max_attempts=data["max_attempts"],
        provider=data["provider"],
        # Absent from documents written before profiles and secret env existed.
        profile=data.get("profile"),
        secret_env={
            name: SecretKeyRef(ref["secret"], ref["key"])
            for name, ref in (data.get("secret_env") or {}).items()
        },
        # Jobs stored before these fields existed had neither stdin nor a terminal.
        stdin=data.get("stdin", False),
        tty=data.get("tty", False),
        tty_size=TerminalSize(**data["tty_size"]) if data.get("tty_size") else None,
        workdir=data.get("workdir"),
    )


def _attempt_to_dict(attempt: Attempt) -> dict[str, Any]:
    return {
        "number": attempt.number,
        "worker_id": attempt.worker_id,
        "reason": attempt.reason,
        "message": attempt.message,
        "finished_at": _time(attempt.finished_at),
        "disruption": attempt.disruption,
    }


def _attempt_from_dict(data: dict[str, Any]) -> Attempt:
    return Attempt(
        number=data["number"],
        worker_id=WorkerId(data["worker_id"]) if data["worker_id"] else None,
        reason=Reason(data["reason"]) if data["reason"] else None,
        message=data["message"],
        finished_at=_parse_time(data["finished_at"]),
        disruption=data["disruption"],
    )


def job_to_json(job: Job) -> str:
    """The job as a JSON document."""
    return json.dumps(
        {
            "id": job.id,
            "spec": spec_to_dict(job.spec),
            "state": job.state.value,
            "created_at": _time(job.created_at),
            "attempt": job.attempt,
            "exit_code": job.exit_code,
            "reason": job.reason,
            "message": job.message,
            "started_at": _time(job.started_at),
            "finished_at": _time(job.finished_at),
            "worker_id": job.worker_id,
            "provider": job.provider,
            "waiting_reason": job.waiting_reason,
            "cancel_requested_at": _time(job.cancel_requested_at),
            "attempts": [_attempt_to_dict(a) for a in job.attempts],
        }
    )


def job_from_json(text: str) -> Job:
    """The inverse of :func:`job_to_json`."""
    data = json.loads(text)
    created_at = _parse_time(data["created_at"])
    assert created_at is not None
    return Job(
        id=JobId(data["id"]),
        spec=spec_from_dict(data["spec"]),
        state=JobState(data["state"]),
        created_at=created_at,
        attempt=data["attempt"],
        exit_code=data["exit_code"],
        reason=Reason(data["reason"]) if data["reason"] else None,
        message=data["message"],
        started_at=_parse_time(data["started_at"]),
        finished_at=_parse_time(data["finished_at"]),
        worker_id=WorkerId(data["worker_id"]) if data["worker_id"] else None,
        provider=data["provider"],
        # Absent in documents written before the field existed.
        waiting_reason=data.get("waiting_reason"),
        cancel_requested_at=_parse_time(data.get("cancel_requested_at")),
        # Documents written before attempts were recorded have none.
        attempts=tuple(_attempt_from_dict(a) for a in data.get("attempts", ())),
    )
