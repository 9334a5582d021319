"""How jobs and workers are shown: tables for people, JSON for machines. Pure functions.

The JSON shape is a public surface (scripts parse it): every job object carries at least
``id``, ``state``, ``exit_code``, ``reason``, ``message``, ``created_at``, ``started_at``,
``finished_at`` and ``worker_id``; missing values are ``null``, times are RFC 3339 UTC.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from hodei.domain.jobs import Job
from hodei.domain.workers import WorkerRecord


def _time(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def command_text(job: Job) -> str:
    """The command as a person would type it."""
    if job.spec.shell is not None:
        return f"sh -c {shlex.quote(job.spec.shell)}"
    return shlex.join(job.spec.command)


def job_dict(job: Job) -> dict[str, Any]:
    """The JSON object for one job."""
    return {
        "id": job.id,
        "state": job.state.value,
        "exit_code": job.exit_code,
        "reason": job.reason,
        "message": job.message,
        "created_at": _time(job.created_at),
        "started_at": _time(job.started_at),
        "finished_at": _time(job.finished_at),
        "worker_id": job.worker_id,
        "provider": job.provider,
        "attempt": job.attempt,
        "command": list(job.spec.command) if job.spec.shell is None else None,
        "shell": job.spec.shell,
        "labels": dict(job.spec.labels),
        "timeout_seconds": job.spec.timeout_seconds,
    }


def worker_dict(worker: WorkerRecord) -> dict[str, Any]:
    """The JSON object for one worker."""
    return {
        "id": worker.id,
        "job_id": worker.job_id,
        "provider": worker.provider,
        "state": worker.state,
        "name": worker.name,
        "created_at": _time(worker.created_at),
        "reason": worker.reason,
        "message": worker.message,
    }


def to_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def age(since: datetime | None, now: datetime) -> str:
    """A short age such as ``42s``, ``5m``, ``3h``, ``2d``."""
    if since is None:
        return "-"
    seconds = max(0, int((now - since).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns separated by two spaces, like kubectl's."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    lines = [headers, *rows]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def jobs_table(jobs: Sequence[Job], now: datetime) -> str:
    rows = [
        [
            job.id,
            job.state.value,
            "-" if job.exit_code is None else str(job.exit_code),
            job.reason or "",
            job.provider or "",
            age(job.created_at, now),
            _clip(command_text(job), 40),
        ]
        for job in jobs
    ]
    return table(["ID", "STATE", "EXIT", "REASON", "PROVIDER", "AGE", "COMMAND"], rows)


def job_details(job: Job) -> str:
    """``hodei jobs show``: one field per line."""
    fields = [
        ("ID", job.id),
        ("State", job.state.value),
        ("Exit code", "-" if job.exit_code is None else str(job.exit_code)),
        ("Reason", job.reason or "-"),
        ("Message", job.message or "-"),
        ("Command", command_text(job)),
        ("Provider", job.provider or "-"),
        ("Attempt", str(job.attempt)),
        ("Worker", job.worker_id or "-"),
        ("Created", _time(job.created_at) or "-"),
        ("Started", _time(job.started_at) or "-"),
        ("Finished", _time(job.finished_at) or "-"),
    ]
    if job.spec.labels:
        labels = ",".join(f"{k}={v}" for k, v in sorted(job.spec.labels.items()))
        fields.append(("Labels", labels))
    if job.spec.timeout_seconds:
        fields.append(("Timeout", f"{job.spec.timeout_seconds:g}s"))
    width = max(len(name) for name, _ in fields) + 1
    return "\n".join(f"{(name + ':').ljust(width)} {value}" for name, value in fields)


def workers_table(workers: Sequence[WorkerRecord], now: datetime) -> str:
    rows = [
        [
            w.id,
            w.job_id,
            w.provider,
            w.state,
            w.name or "",
            age(w.created_at, now),
            _clip(f"{w.reason}: {w.message}" if w.reason else (w.message or ""), 50),
        ]
        for w in workers
    ]
    return table(["ID", "JOB", "PROVIDER", "STATE", "PROCESS/POD", "AGE", "DETAIL"], rows)
